import Config

# Tests start their own instances with temporary data dirs.
config :keyring, autostart: false
config :logger, level: :warning
