"""Programs that talk to the server only over HTTP; they import nothing from the server."""
