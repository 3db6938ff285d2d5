"""Thin Typer command modules; each exposes ``register(app: typer.Typer) -> None``."""
