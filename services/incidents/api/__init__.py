"""The operator HTTP API of DESIGN section 12 (FastAPI), served by the incidents service."""
