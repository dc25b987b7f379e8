from workbench.models.audit import AuditEvent, AuditHead
from workbench.models.catalog import Instance, Patient, Series, Study
from workbench.models.projects import Membership, Project, Role

__all__ = ["AuditEvent", "AuditHead", "Instance", "Membership", "Patient", "Project", "Role", "Series", "Study"]
