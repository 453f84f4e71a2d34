"""Model builders: MLPs here; LeNet-5 and the experiment networks in sibling modules."""
from .mlp import mlp
from .lenet import lenet, reference_lenet
from .residual import Residual, residual_mlp
