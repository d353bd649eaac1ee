"""Gate probes: stdlib parsers shipped to hosts (``parsers``), typed results and straggler checks."""
