"""Pure domain of the incidents service: no I/O imports, time from an injected Clock."""
