from workbench.models.audit import AuditEvent
from workbench.models.catalog import Instance, Patient, Series, Study
from workbench.models.projects import Membership, Project, Role

__all__ = ["AuditEvent", "Instance", "Membership", "Patient", "Project", "Role", "Series", "Study"]
