"""The signing server: builder attribution headers and managed trader keys, rate-limited and audited."""
