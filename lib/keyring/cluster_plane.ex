defmodule Keyring.ClusterPlane do
  @moduledoc false
  # The cluster plane of one instance (one operator's nodes, Erlang
  # distribution): the presence CRDT and Keyring.Coordinator, topology events
  # (Keyring.ClusterHandler) and discovery (Keyring.Cluster). :rest_for_one:
  # discovery and the topology handler depend on the coordinator, not the
  # other way round. Its crashes stay here: the mesh plane is supervised
  # beside it, not under it.

  use Supervisor

  alias Keyring.Instance

  def child_spec(opts),
    do: %{id: __MODULE__, start: {__MODULE__, :start_link, [opts]}, type: :supervisor}

  def start_link(opts),
    do:
      Supervisor.start_link(__MODULE__, opts, name: Instance.child_name(opts[:name], __MODULE__))

  @impl Supervisor
  def init(opts) do
    name = opts[:name]

    children =
      Keyring.Coordinator.children(name, opts[:data_dir], opts[:coordinator]) ++
        [
          {Keyring.ClusterHandler, instance: name},
          {Keyring.Cluster, instance: name, topologies: opts[:cluster_topologies]}
        ]

    Supervisor.init(children, strategy: :rest_for_one)
  end
end
