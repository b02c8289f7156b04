"""avgpolicy: decide, field by field, which student data may go to which partner under the AVG."""

__version__ = "0.1.0"

from .decision import Consent as Consent
from .decision import Decision as Decision
from .decision import FieldDecision as FieldDecision
from .decision import Reason as Reason
from .errors import Diagnostic as Diagnostic
from .errors import PolicyError as PolicyError
from .loader import load as load
from .loader import loads as loads
from .policy import Policy as Policy

__all__ = ["Consent", "Decision", "Diagnostic", "FieldDecision", "Policy", "PolicyError", "Reason", "__version__",
           "load", "loads"]
