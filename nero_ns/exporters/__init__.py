"""Exporters of nero models. Importing this package stays light: it is imported while nerfstudio's `ns-export`
is still loading (see `ns_export`)."""

from nero_ns.exporters.ns_export import install_export_commands, register_export_command

__all__ = ["install_export_commands", "register_export_command"]
