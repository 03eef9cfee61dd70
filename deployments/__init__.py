"""How and when driftloop runs on a Prefect server: prefect.yaml, automations, the stack."""
