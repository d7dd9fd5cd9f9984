"""Services discovered from resource attributes, and who calls whom."""
