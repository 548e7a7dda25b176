defmodule Mix.Tasks.Keyring.Start do
  @shortdoc "Starts a named, distributed Keyring node and blocks"
  @moduledoc """
  Starts this VM as the distributed node `NAME@127.0.0.1` running Keyring,
  then blocks, logging connections and presence changes.

      mix keyring.start keyring1
      mix keyring.start keyring2      # in another terminal: they find each other

  Nodes connect through the topologies in `config :keyring, :cluster_topologies`
  (in dev: an Epmd host list of `keyring1..keyring3@127.0.0.1`), plus any
  `--connect` node. Inspect the cluster from another shell with
  `iex --name probe@127.0.0.1 --cookie keyring_secret --remsh keyring1@127.0.0.1`,
  or attach iex directly: `iex -S mix keyring.start keyring1`.

  ## Options

    * `--data-dir DIR` — identity and state (default `.keyring/NAME`)
    * `--host HOST` — host part of the node name (default `127.0.0.1`)
    * `--port PORT` — Erlang distribution listen port (default: any)
    * `--cookie COOKIE` — distribution cookie (default `$KEYRING_COOKIE`,
      `config :keyring, :cookie`, or `keyring_secret`)
    * `--connect NODE` — also connect to NODE (repeatable)
    * `--heartbeat MS` — presence heartbeat (default 5000)
    * `--gossip-secret SECRET` — also discover nodes by LAN multicast
      (`Keyring.Cluster.Strategy.Gossip`); default `$KEYRING_GOSSIP_SECRET`
    * `--gateway-port PORT` — HTTP gateway and status page on 127.0.0.1:PORT
      (default: a free port, printed at start; see `Keyring.Gateway`)
    * `--no-gateway` — no gateway
  """
  use Mix.Task
  require Logger

  @switches [
    data_dir: :string,
    host: :string,
    port: :integer,
    cookie: :string,
    connect: :keep,
    heartbeat: :integer,
    gossip_secret: :string,
    gateway_port: :integer,
    gateway: :boolean
  ]

  @impl Mix.Task
  def run(args) do
    {opts, rest, invalid} = OptionParser.parse(args, strict: @switches)

    name =
      case {rest, invalid} do
        {[name], []} ->
          name

        _ ->
          Mix.raise("usage: mix keyring.start NAME [--data-dir DIR --port PORT --cookie C ...]")
      end

    host = opts[:host] || "127.0.0.1"
    node = :"#{name}@#{host}"
    start_distribution!(node, opts)

    topologies = topologies(opts)
    coordinator = if hb = opts[:heartbeat], do: [heartbeat: hb], else: []

    Application.put_env(:keyring, :autostart, true)

    Application.put_env(:keyring, :instance,
      data_dir: opts[:data_dir] || Path.join(".keyring", name),
      coordinator: coordinator,
      cluster_topologies: topologies,
      gateway: if(opts[:gateway] != false, do: [port: opts[:gateway_port] || 0], else: false)
    )

    Mix.Task.run("app.start")
    Logger.configure(level: :info)
    Keyring.Coordinator.subscribe()

    Mix.shell().info("""
    Keyring node #{node} is up
      node id     #{Keyring.Identity.node_id()}
      incarnation #{hd(Keyring.Coordinator.active_nodes() |> Enum.filter(&(&1.node == node))).incarnation}
      cookie      #{Node.get_cookie()}
      status page #{Keyring.Gateway.url() || "off"}
    Watching connections and presence (Ctrl-C twice to stop).
    """)

    unless iex_running?(), do: loop()
  end

  defp loop do
    receive do
      {:keyring_presence, kind, _entry} when kind != :update ->
        nodes = Keyring.Coordinator.active_nodes() |> Enum.map(& &1.node)
        Logger.info("[keyring.start] active nodes: #{inspect(nodes)}")
        loop()

      _ ->
        loop()
    end
  end

  defp iex_running?, do: Code.ensure_loaded?(IEx) and IEx.started?()

  defp start_distribution!(node, opts) do
    if Node.alive?() do
      Mix.shell().info("already distributed as #{node()}; ignoring NAME")
    else
      System.cmd("epmd", ["-daemon"])

      if port = opts[:port] do
        :application.set_env(:kernel, :inet_dist_listen_min, port)
        :application.set_env(:kernel, :inet_dist_listen_max, port)
      end

      case Node.start(node, :longnames) do
        {:ok, _} -> :ok
        {:error, reason} -> Mix.raise("could not start node #{node}: #{inspect(reason)}")
      end
    end

    cookie =
      opts[:cookie] || System.get_env("KEYRING_COOKIE") ||
        Application.get_env(:keyring, :cookie) || "keyring_secret"

    Node.set_cookie(String.to_atom(cookie))
  end

  defp topologies(opts) do
    configured = Application.get_env(:keyring, :cluster_topologies, [])

    extra =
      case Keyword.get_values(opts, :connect) do
        [] ->
          []

        nodes ->
          [
            cli: [
              strategy: Keyring.Cluster.Strategy.Epmd,
              config: [hosts: Enum.map(nodes, &String.to_atom/1)]
            ]
          ]
      end

    gossip =
      case opts[:gossip_secret] || System.get_env("KEYRING_GOSSIP_SECRET") do
        nil -> []
        secret -> [lan: [strategy: Keyring.Cluster.Strategy.Gossip, config: [secret: secret]]]
      end

    configured ++ extra ++ gossip
  end
end
