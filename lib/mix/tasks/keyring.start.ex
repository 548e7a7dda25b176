defmodule Mix.Tasks.Keyring.Start do
  @shortdoc "Starts a named, distributed Keyring node and blocks"
  @moduledoc """
  Starts this VM as the distributed node `NAME@HOST` running Keyring, then
  blocks, logging connections and presence changes.

      mix keyring.start keyring1
      mix keyring.start keyring2      # in another terminal: they find each other

  Nodes connect through the topologies in `config :keyring, :cluster_topologies`
  (in dev: an Epmd host list of `keyring1..keyring3@127.0.0.1`), plus any
  `--connect` node. Attach iex directly with `iex -S mix keyring.start keyring1`,
  or inspect a running node from another shell of the same checkout with
  `iex --name probe@127.0.0.1 --cookie "$(cat .keyring/cookie)" --remsh keyring1@127.0.0.1`
  (a cookie on a command line shows in the process list while it runs).

  ## Who can connect

  Erlang distribution gives every connected node full control of this one,
  so it is fenced twice:

    * **Cookie.** There is no default cookie. Unless `--cookie`,
      `$KEYRING_COOKIE` or `config :keyring, :cookie` names one, a random
      cookie is generated once and kept in `.keyring/cookie` of the working
      directory (mode 0600, directory 0700), so nodes started from one
      checkout share it. The cookie is never printed; the banner says where
      it comes from.
    * **Interface.** Distribution (and epmd, when this task starts it)
      listens only on the address of `--host`: loopback by default. Give
      `--host` a LAN address or name to reach other machines, and then use
      TLS (`--tls-dist`): a cookie alone crosses the network in a
      challenge-response an observer can attack offline, and the traffic is
      in the clear.

  With `--tls-dist CERTFILE --tls-dist-ca CAFILE [--tls-dist-key KEYFILE]`
  distribution runs over TLS 1.3 (`inet_tls_dist`): both sides present a
  certificate signed by the CA and verify the other's, and the connecting
  side checks that the certificate names the host in the peer's node name.
  TLS distribution is chosen when the VM boots, so the task restarts itself
  under `elixir --erl "-proto_dist inet_tls -ssl_dist_optfile ..."` (the
  option file goes to `.keyring/tls/NAME.conf`). Under iex, start iex with
  those flags yourself (the task prints them).

  ## Options

    * `--data-dir DIR` — identity and state (default `.keyring/NAME`)
    * `--host HOST` — host part of the node name and the only address
      distribution listens on (default `127.0.0.1`)
    * `--port PORT` — Erlang distribution listen port (default: any)
    * `--cookie COOKIE` — distribution cookie (default `$KEYRING_COOKIE`,
      `config :keyring, :cookie`, or the generated `.keyring/cookie`)
    * `--tls-dist CERTFILE`, `--tls-dist-key KEYFILE` (default: CERTFILE),
      `--tls-dist-ca CAFILE` — distribution over mutually verified TLS
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

  alias Keyring.Cluster.{Cookie, Distribution}

  @switches [
    data_dir: :string,
    host: :string,
    port: :integer,
    cookie: :string,
    tls_dist: :string,
    tls_dist_key: :string,
    tls_dist_ca: :string,
    connect: :keep,
    heartbeat: :integer,
    gossip_secret: :string,
    gateway_port: :integer,
    gateway: :boolean
  ]

  # Set in the environment of the VM this task restarts itself as.
  @child_env "KEYRING_TLS_DIST_CHILD"

  @impl Mix.Task
  def run(args) do
    {opts, rest, invalid} = OptionParser.parse(args, strict: @switches)

    name =
      case {rest, invalid} do
        {[name], []} ->
          if name =~ ~r/\A[A-Za-z0-9_-]{1,64}\z/,
            do: name,
            else: Mix.raise("NAME is 1..64 of [A-Za-z0-9_-], got: #{inspect(name)}")

        _ ->
          Mix.raise("usage: mix keyring.start NAME [--data-dir DIR --port PORT --cookie C ...]")
      end

    host = opts[:host] || "127.0.0.1"
    node = :"#{name}@#{host}"
    tls = tls_options(opts)

    if tls && not Distribution.tls?() && not Node.alive?(),
      do: restart_with_tls(name, tls, args)

    cookie_source = start_distribution!(node, host, tls, opts)
    start_keyring!(name, opts)

    Mix.shell().info("""
    Keyring node #{node()} is up
      node id      #{Keyring.Identity.node_id()}
      incarnation  #{incarnation()}
      distribution #{describe_listen()}
      cookie       #{Cookie.describe(cookie_source)}
      status page  #{Keyring.Gateway.url() || "off"}
    Watching connections and presence (Ctrl-C twice to stop).
    """)

    if System.get_env(@child_env), do: halt_when_parent_exits()
    unless iex_running?(), do: loop()
  end

  defp start_keyring!(name, opts) do
    coordinator = if hb = opts[:heartbeat], do: [heartbeat: hb], else: []
    Application.put_env(:keyring, :autostart, true)

    Application.put_env(:keyring, :instance,
      data_dir: opts[:data_dir] || Path.join(".keyring", name),
      coordinator: coordinator,
      cluster_topologies: topologies(opts),
      gateway: if(opts[:gateway] != false, do: [port: opts[:gateway_port] || 0], else: false)
    )

    Mix.Task.run("app.start")
    Logger.configure(level: :info)
    Keyring.Coordinator.subscribe()
  end

  defp incarnation do
    Keyring.Coordinator.active_nodes()
    |> Enum.find_value("?", &(&1.node == node() && &1.incarnation))
  end

  defp describe_listen do
    case Distribution.listen_address() do
      {:ok, {ip, port}} ->
        "#{:inet.ntoa(ip)}:#{port}" <> if(Distribution.tls?(), do: " (TLS)", else: "")

      _ ->
        "?"
    end
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

  defp start_distribution!(node, host, tls, opts) do
    {:ok, cookie, source} =
      case Cookie.resolve(cookie: opts[:cookie]) do
        {:ok, _, _} = ok -> ok
        {:error, reason} -> Mix.raise("no usable distribution cookie: #{inspect(reason)}")
      end

    if Node.alive?() do
      Mix.shell().info("already distributed as #{node()}; ignoring NAME, --host and --port")
      Node.set_cookie(cookie)
    else
      case Distribution.start(node, host: host, port: opts[:port], cookie: cookie, tls: tls) do
        {:ok, _info} -> :ok
        {:error, reason} -> Mix.raise("could not start node #{node}: #{inspect(reason)}")
      end
    end

    source
  end

  defp tls_options(opts) do
    case {opts[:tls_dist], opts[:tls_dist_ca]} do
      {nil, nil} ->
        nil

      {nil, _} ->
        Mix.raise("--tls-dist-ca needs --tls-dist CERTFILE")

      {_, nil} ->
        Mix.raise("--tls-dist needs --tls-dist-ca CAFILE (the CA that signs every node)")

      {cert, ca} ->
        [certfile: cert, keyfile: opts[:tls_dist_key] || cert, cacertfile: ca]
    end
  end

  # TLS distribution must be selected when the VM boots: run this task again
  # in a VM started with the flags, pass its output through, and end with
  # its status. The child reads its stdin (a pipe from here) and halts when
  # it closes, so it never outlives this VM, however this VM ends.
  defp restart_with_tls(name, tls, args) do
    erl_args =
      case Distribution.tls_erl_args(tls, Path.join([".keyring", "tls", "#{name}.conf"])) do
        {:ok, erl_args} -> erl_args
        {:error, reason} -> Mix.raise("cannot set up TLS distribution: #{inspect(reason)}")
      end

    if iex_running?() or System.get_env(@child_env) do
      Mix.raise("""
      TLS distribution is chosen when the VM starts. Run:

          iex --erl "#{Enum.join(erl_args, " ")}" -S mix keyring.start #{Enum.join(args, " ")}
      """)
    end

    elixir = System.find_executable("elixir") || Mix.raise("elixir not found in PATH")

    port =
      Port.open({:spawn_executable, elixir}, [
        :binary,
        :exit_status,
        :use_stdio,
        :stderr_to_stdout,
        args: ["--erl", Enum.join(erl_args, " "), "-S", "mix", "keyring.start" | args],
        env: [{~c"#{@child_env}", ~c"1"}]
      ])

    relay(port)
  end

  defp relay(port) do
    receive do
      {^port, {:data, data}} ->
        IO.binwrite(data)
        relay(port)

      {^port, {:exit_status, status}} ->
        System.halt(status)
    end
  end

  defp halt_when_parent_exits do
    spawn(fn ->
      IO.read(:stdio, :eof)
      System.halt(0)
    end)
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
