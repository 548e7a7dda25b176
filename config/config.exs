import Config

# When Keyring runs as its own application (`mix run --no-halt`, `mix keyring.start`)
# the application starts one Keyring instance. A host app that embeds Keyring adds
# `{Keyring, opts}` to its own supervision tree instead and leaves this false (the
# default when Keyring is a dependency, since a dependency's config is not loaded).
config :keyring, autostart: true

import_config "#{config_env()}.exs"
