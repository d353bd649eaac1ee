"""Use cases that the CLI and CI call: gather inputs, plan, apply, roll back."""
