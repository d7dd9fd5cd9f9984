"""Query parameters and the shapes the API answers with; backend-neutral."""
