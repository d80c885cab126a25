"""mnist_kernels: the from-scratch MNIST MLP in JAX, and the kernel variants that get timed."""

from .model import DTYPES as DTYPES
from .model import IMAGE_PIXELS as IMAGE_PIXELS
from .model import NUM_CLASSES as NUM_CLASSES
from .model import accuracy as accuracy
from .model import flops_forward as flops_forward
from .model import flops_update as flops_update
from .model import init_params as init_params
from .model import layer_sizes_of as layer_sizes_of
from .model import loss as loss
from .model import predict as predict
from .model import sgd as sgd
from .model import update as update

__version__ = "0.1.0"
