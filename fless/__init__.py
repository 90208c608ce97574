"""fless: Functions-as-a-Service for private edge clouds.

Functions compiled to WebAssembly are stored by a core node and run in
Wasmtime sandboxes on worker nodes; see docs/ARCHITECTURE.md.
"""

__version__ = "0.1.0"
