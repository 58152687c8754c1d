"""The engine's side of the signing server: builder headers and order signatures over HTTP."""
