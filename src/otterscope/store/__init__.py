"""Storage: the interface every backend implements, and one folder per backend."""
