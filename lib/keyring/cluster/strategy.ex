defmodule Keyring.Cluster.Strategy do
  @moduledoc """
  A discovery strategy: a process that finds nodes and connects to them.

  Implement `start_link/1`; it receives `instance:` (the local instance),
  `topology:` (the topology name) and `config:` (the topology's `config`
  keyword list). Use `connect/2` to connect: it skips nodes already connected
  and logs the outcome. Always reschedule your polls, whatever happened
  (a strategy that stops retrying never heals — libcluster #168).

      defmodule MyApp.DNSStrategy do
        @behaviour Keyring.Cluster.Strategy
        use GenServer

        @impl Keyring.Cluster.Strategy
        def start_link(opts), do: GenServer.start_link(__MODULE__, opts)

        @impl GenServer
        def init(opts), do: {:ok, opts, {:continue, :poll}}

        @impl GenServer
        def handle_continue(:poll, opts) do
          Keyring.Cluster.Strategy.connect(opts[:topology], MyApp.DNS.nodes())
          Process.send_after(self(), :poll, 5_000)
          {:noreply, opts}
        end
      end
  """
  require Logger

  @callback start_link(keyword()) :: GenServer.on_start()

  @doc """
  Connects to each of `nodes` not yet connected (and not this node).
  Returns the nodes that could not be reached.
  """
  @spec connect(term(), [node()]) :: [node()]
  def connect(topology, nodes) do
    connected = MapSet.new([node() | Node.list()])

    for n <- nodes, not MapSet.member?(connected, n), reduce: [] do
      failed ->
        case :net_kernel.connect_node(n) do
          true ->
            Logger.info("[Keyring.Cluster:#{topology}] connected to #{n}")
            failed

          _false_or_ignored ->
            Logger.debug("[Keyring.Cluster:#{topology}] could not connect to #{n}")
            [n | failed]
        end
    end
  end
end
