import Config

# `mix keyring.start keyring1` / `keyring2` / `keyring3` find each other.
config :keyring, :cluster_topologies,
  keyring: [
    strategy: Keyring.Cluster.Strategy.Epmd,
    config: [hosts: [:"keyring1@127.0.0.1", :"keyring2@127.0.0.1", :"keyring3@127.0.0.1"]]
  ]
