"""churnguard: point-in-time churn and maintenance-need models, and whom to contact first and why."""

__version__ = "0.1.0"
