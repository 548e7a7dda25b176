defmodule Keyring.ClusterHandler do
  @moduledoc false
  # Turns `:net_kernel.monitor_nodes/2` events into Keyring topology events.
  #
  # It reacts only to distribution connections, whoever makes them: a
  # `Keyring.Cluster` strategy, a host application's libcluster, or
  # `Node.connect/1` by hand. On `nodeup`/`nodedown` it logs and broadcasts
  # `{:keyring_topology, :nodeup | :nodedown, node}` on this node to the
  # `"keyring:topology"` topic of `Keyring.PubSub`. The coordinator marks the
  # node's presence down on `:nodedown` at once.
  #
  # CRDT neighbours follow from the same connections: every `Keyring.CRDT`
  # replica is a member of a `:pg` group, `:pg` adds and removes remote members
  # as nodes connect and disconnect, and each replica starts an anti-entropy
  # exchange with every new member. Wiring is therefore symmetric by
  # construction (no one-way `set_neighbours` as in DeltaCrdt).
  use GenServer
  require Logger

  alias Keyring.{Instance, PubSub}

  @doc false
  def start_link(opts) do
    instance = Keyword.fetch!(opts, :instance)
    GenServer.start_link(__MODULE__, instance, name: Instance.child_name(instance, __MODULE__))
  end

  @impl GenServer
  def init(instance) do
    :ok = :net_kernel.monitor_nodes(true, node_type: :visible)
    {:ok, %{instance: instance}}
  end

  @impl GenServer
  def handle_info({kind, node, _info}, state) when kind in [:nodeup, :nodedown] do
    Logger.info("[Keyring.ClusterHandler] #{kind} #{node}")
    message = {:keyring_topology, kind, node}
    PubSub.local_broadcast(PubSub.topology_topic(), message, instance: state.instance)
    {:noreply, state}
  end

  def handle_info(_other, state), do: {:noreply, state}
end
