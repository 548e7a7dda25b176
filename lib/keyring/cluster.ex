defmodule Keyring.Cluster do
  @moduledoc """
  Node discovery: connects Erlang nodes according to configured topologies.
  It replaces `libcluster` and reads the same configuration shape:

      config :keyring, :cluster_topologies,
        keyring: [
          strategy: Keyring.Cluster.Strategy.Epmd,
          config: [hosts: [:"keyring1@127.0.0.1", :"keyring2@127.0.0.1"]]
        ],
        lan: [
          strategy: Keyring.Cluster.Strategy.Gossip,
          config: [secret: System.fetch_env!("KEYRING_GOSSIP_SECRET")]
        ]

  (libcluster's names `Cluster.Strategy.Epmd` and `Cluster.Strategy.Gossip`
  are accepted as aliases.) Strategies only connect nodes: everything else
  (presence, CRDT replication) reacts to distribution events through
  ClusterHandler, so clustering by a host app's libcluster or by
  `Node.connect/1` works just as well, with no topology configured here.

  Strategies:

    * `Keyring.Cluster.Strategy.Epmd` — a static host list, retried forever.
    * `Keyring.Cluster.Strategy.Gossip` — authenticated UDP multicast on the LAN.
    * your own module implementing `Keyring.Cluster.Strategy`.
  """
  use Supervisor

  @aliases %{
    Cluster.Strategy.Epmd => Keyring.Cluster.Strategy.Epmd,
    Cluster.Strategy.Gossip => Keyring.Cluster.Strategy.Gossip
  }

  @doc false
  def start_link(opts) do
    instance = Keyword.fetch!(opts, :instance)
    name = Keyring.Instance.child_name(instance, __MODULE__)
    Supervisor.start_link(__MODULE__, opts, name: name)
  end

  @impl Supervisor
  def init(opts) do
    instance = opts[:instance]

    children =
      for {topology, spec} <- opts[:topologies] || [] do
        spec = Keyword.validate!(spec, [:strategy, config: []])
        strategy = Map.get(@aliases, spec[:strategy], spec[:strategy])

        unless is_atom(strategy) and Code.ensure_loaded?(strategy),
          do: raise(ArgumentError, "unknown cluster strategy #{inspect(spec[:strategy])}")

        args = [instance: instance, topology: topology, config: spec[:config]]
        Supervisor.child_spec({strategy, args}, id: {strategy, topology})
      end

    Supervisor.init(children, strategy: :one_for_one)
  end
end
