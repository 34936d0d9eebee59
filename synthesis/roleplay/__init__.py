"""Multi-agent role-play that turns MCP tool definitions into verified tool-use trajectories.

Plain Python (no Django).  The entry point is :func:`run_trajectories`; every step it
produces goes to a :class:`StepSink` as it happens, and a trajectory resumes from its
stored steps (:class:`ResumeState`).
"""

from .config import RoleplayConfig
from .engine import ROLES, SinkError, plan_specs, run_trajectories
from .personas import SEED_PERSONAS, default_embedder, generate_personas
from .steps import (
    MODES,
    FinishStep,
    MemorySink,
    MessageStep,
    Persona,
    ReflectionStep,
    ResumeState,
    ScenarioStep,
    Step,
    StepSink,
    TrajectoryResult,
    TrajectorySpec,
    VoteStep,
    step_from_dict,
)

__all__ = [
    "MODES",
    "ROLES",
    "SEED_PERSONAS",
    "FinishStep",
    "MemorySink",
    "MessageStep",
    "Persona",
    "ReflectionStep",
    "ResumeState",
    "RoleplayConfig",
    "ScenarioStep",
    "SinkError",
    "Step",
    "StepSink",
    "TrajectoryResult",
    "TrajectorySpec",
    "VoteStep",
    "default_embedder",
    "generate_personas",
    "plan_specs",
    "run_trajectories",
    "step_from_dict",
]
