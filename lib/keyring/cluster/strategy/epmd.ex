defmodule Keyring.Cluster.Strategy.Epmd do
  @moduledoc """
  Connects to a static list of nodes, and keeps reconnecting.

      config :keyring, :cluster_topologies,
        keyring: [
          strategy: Keyring.Cluster.Strategy.Epmd,
          config: [hosts: [:"keyring1@127.0.0.1", :"keyring2@127.0.0.1"]]
        ]

  Config: `:hosts` (node names), `:interval` (ms between attempts to reach
  disconnected hosts, default 5_000). Unlike libcluster's Epmd strategy,
  which connects once unless given a `timeout`, a host that goes away is
  reconnected when it comes back.
  """
  @behaviour Keyring.Cluster.Strategy
  use GenServer

  alias Keyring.Cluster.Strategy

  @impl Strategy
  def start_link(opts), do: GenServer.start_link(__MODULE__, opts)

  @impl GenServer
  def init(opts) do
    config = Keyword.validate!(opts[:config], hosts: [], interval: 5_000)

    unless is_list(config[:hosts]) and Enum.all?(config[:hosts], &is_atom/1),
      do: raise(ArgumentError, "Epmd :hosts must be a list of node names (atoms)")

    unless is_integer(config[:interval]) and config[:interval] > 0,
      do: raise(ArgumentError, "Epmd :interval must be a positive integer")

    {:ok, %{topology: opts[:topology], hosts: config[:hosts], interval: config[:interval]},
     {:continue, :connect}}
  end

  @impl GenServer
  def handle_continue(:connect, state) do
    if Node.alive?(), do: Strategy.connect(state.topology, state.hosts)
    Process.send_after(self(), :connect, state.interval)
    {:noreply, state}
  end

  @impl GenServer
  def handle_info(:connect, state), do: {:noreply, state, {:continue, :connect}}
end
