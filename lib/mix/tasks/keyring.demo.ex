defmodule Mix.Tasks.Keyring.Demo do
  @shortdoc "Runs a local multi-node keyring and shows presence converging"
  @moduledoc """
  Starts a local keyring of real, separate BEAM nodes on loopback (OTP
  `:peer`, each with its own temporary data dir and identity), connected by
  the Epmd strategy, and narrates what happens:

    1. presence converges on every node;
    2. a task is routed to the node that registered a capability;
    3. node 1 creates a keyring, node 2 joins it with an invite and calls a
       handle node 1 exposed, over QUIC; the last node, not a member, is refused;
    4. node 1 stores a 64 MiB blob and shares it into the keyring; node 2
       fetches it over QUIC (`Keyring.Sync`), with the transfer's progress;
    5. one node is killed; the survivors mark it down and agree on who is left.

      mix keyring.demo            # three nodes
      mix keyring.demo --nodes 5
      mix keyring.demo --stay     # keep the survivors up (and their status pages) until Ctrl-C

  Every node serves its status page and gateway (`Keyring.Gateway`); the
  demo prints their URLs.

  The demo VM is not part of the cluster: it drives the nodes over their
  standard I/O. The nodes start distribution as `mix keyring.start` does
  (`Keyring.Cluster.Distribution`): on loopback only, with the cookie kept in
  `.keyring/cookie` (generated once, mode 0600; never on a command line).
  """
  use Mix.Task

  alias Keyring.Cluster.{Cookie, Distribution}

  @impl Mix.Task
  def run(args) do
    {opts, _, _} = OptionParser.parse(args, strict: [nodes: :integer, stay: :boolean])
    n = max(opts[:nodes] || 3, 2)
    Mix.Task.run("compile")
    Mix.Task.run("loadpaths")
    {:ok, cookie, source} = Cookie.resolve()
    # The OS pid keeps two demos (and a killed earlier one's leftovers) apart.
    suffix = "#{System.pid()}_#{System.unique_integer([:positive])}"
    names = for i <- 1..n, do: :"demo#{i}_#{suffix}"
    hosts = for name <- names, do: :"#{name}@127.0.0.1"
    root = Path.join(System.tmp_dir!(), "keyring-demo-#{suffix}")
    File.rm_rf!(root)

    say("Starting #{n} Keyring nodes on 127.0.0.1 (data under #{root})")
    say("Distribution listens on loopback only; cookie #{Cookie.describe(source)}")
    t0 = now()

    peers =
      names
      |> Enum.map(&Task.async(fn -> start_node(&1, hosts, root, cookie) end))
      |> Enum.map(&Task.await(&1, 60_000))

    try do
      for {peer, node} <- peers do
        id = call(peer, Keyring.Identity, :node_id, [])
        {:ok, _} = call(peer, Keyring.Store, :put, ["hello from #{node}"])
        stats = call(peer, Keyring.Store, :stats, [])

        say(
          "  #{node} started (node id #{id}; store: #{stats.blobs} blob, " <>
            "#{stats.bytes} bytes, #{stats.commits} durable commit)\n" <>
            "    status page #{call(peer, Keyring.Gateway, :url, [])}"
        )
      end

      wait_until(fn -> Enum.all?(peers, &(active(&1) == Enum.sort(hosts))) end)

      say(
        "\nPresence converged on all #{n} nodes after #{now() - t0} ms. As seen from #{elem(hd(peers), 1)}:"
      )

      {first, _} = hd(peers)
      for p <- call(first, Keyring.Coordinator, :active_nodes, []), do: say("  " <> inspect(p))

      {second, second_node} = Enum.at(peers, 1)
      :ok = call(second, Keyring.Coordinator, :register, [:upcase, {String, :upcase, []}])

      wait_until(fn ->
        Enum.any?(
          call(first, Keyring.Coordinator, :active_nodes, []),
          &(:upcase in &1.capabilities)
        )
      end)

      result = call(first, Keyring.Coordinator, :route, [:upcase, "hello keyring", []])

      say(
        "\n#{second_node} registered :upcase; routing from #{elem(hd(peers), 1)}: #{inspect(result)}"
      )

      ring = mesh_demo(peers)
      content_demo(peers, ring)

      {victim, victim_node} = List.last(peers)
      survivors = Enum.drop(peers, -1)
      say("\nKilling #{victim_node} ...")
      t1 = now()
      :peer.cast(victim, :erlang, :halt, [])
      want = survivors |> Enum.map(&elem(&1, 1)) |> Enum.sort()
      wait_until(fn -> Enum.all?(survivors, &(active(&1) == want)) end)
      say("Marked down on every survivor after #{now() - t1} ms. Survivors now see:")
      {first, first_node} = hd(survivors)

      for {_id, p} <- call(first, Keyring.Coordinator, :presence, [[include_down: true]]),
          do: say("  " <> inspect(p))

      say(
        "\n#{first_node}: Keyring.Coordinator.active_nodes() -> #{inspect(active({first, first_node}))}"
      )

      say("Done.")
      if opts[:stay], do: stay(survivors)
    after
      for {peer, _} <- peers do
        try do
          :peer.stop(peer)
        catch
          _, _ -> :ok
        end
      end

      File.rm_rf(root)
    end
  end

  # Each node boots without distribution (the demo talks to it over stdio)
  # and starts it from inside, bound to loopback, with the cookie passed in a
  # message rather than on its command line.
  defp start_node(name, hosts, root, cookie) do
    args = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])
    {:ok, peer, _nonode} = :peer.start(%{connection: :standard_io, args: args})
    node = :"#{name}@127.0.0.1"
    {:ok, _} = call(peer, Distribution, :start, [node, [cookie: cookie]])
    {:ok, _} = call(peer, Application, :ensure_all_started, [:keyring])
    :ok = call(peer, Logger, :configure, [[level: :warning]])

    opts = [
      data_dir: Path.join(root, to_string(name)),
      coordinator: [heartbeat: 1_000],
      cluster_topologies: [
        demo: [strategy: Keyring.Cluster.Strategy.Epmd, config: [hosts: hosts, interval: 500]]
      ],
      gateway: [port: 0]
    ]

    {:ok, _} =
      call(peer, Supervisor, :start_child, [Keyring.Application.Supervisor, {Keyring, opts}])

    {peer, node}
  end

  defp active({peer, _node}),
    do: call(peer, Keyring.Coordinator, :active_nodes, []) |> Enum.map(& &1.node)

  # Keyrings over QUIC: node 1 creates a keyring and invites node 2, which
  # joins; node 1 exposes a handle; the member's call succeeds over QUIC and
  # the last node, in no keyring with node 1, is refused. (Handshake-level
  # refusal of non-members is covered by test/keyring/mesh and test/cluster.)
  defp mesh_demo(peers) do
    [{first, first_node}, {second, second_node} | _] = peers
    {outsider, outsider_node} = List.last(peers)
    first_id = call(first, Keyring.Identity, :node_id, [])

    {:ok, ring} = call(first, Keyring.Ring, :create, ["demo"])
    {:ok, invite} = call(first, Keyring.Ring, :invite, [ring])
    {:ok, ^ring} = call(second, Keyring, :join, [invite])
    :ok = call(first, Keyring, :expose, [:shout, &String.upcase/1])

    say(
      "\n#{first_node} created keyring #{ring |> Keyring.Identity.NodeId.encode() |> Keyring.Identity.NodeId.short()}…; #{second_node} joined it with a one-time invite"
    )

    member = call(second, Keyring, :call, [first_id, :shout, "hello over quic", 10_000])
    say("  #{second_node} (member) calls :shout on #{first_node} over QUIC: #{inspect(member)}")

    outside = call(outsider, Keyring, :call, [first_id, :shout, "let me in", 10_000])
    say("  #{outsider_node} (not a member) calls it: #{inspect(outside)}")
    ring
  end

  # Content sync: node 1 stores a blob and shares it into the keyring; node 2
  # fetches it over QUIC (verified in 16 KiB groups, in Rust) while the demo
  # prints the transfer's progress from Keyring.Sync.transfers/0.
  defp content_demo(peers, ring) do
    [{first, first_node}, {second, second_node} | _] = peers
    size = 64 * 1024 * 1024
    {:ok, cid} = call(first, Keyring.Store, :put, [:crypto.strong_rand_bytes(size)], 60_000)
    {:ok, _} = call(first, Keyring.Store, :share, [cid, ring])
    first_key = call(first, Keyring.Identity, :public_key, [])

    say(
      "\n#{first_node} stored a 64 MiB blob (cid #{String.slice(cid, 0, 16)}…) and shared it into the keyring; #{second_node} fetches it:"
    )

    {:ok, id} =
      call(second, Keyring.Sync, :fetch, [cid, [from: first_key, keyring: ring, async: true]])

    t = watch_transfer(second, id)
    IO.write(:stderr, "\n")
    secs = max(t.finished_ms - t.started_ms, 1) / 1000

    say(
      "  #{inspect(t.stage)}: #{mib(t.bytes_done)} MiB in #{Float.round(secs, 2)} s " <>
        "(#{Float.round(t.bytes_done / secs / 1_048_576, 1)} MiB/s), every 16 KiB group verified before it was written"
    )

    {:ok, size2} = call(second, Keyring.Store, :size, [cid])
    say("  #{second_node} now holds #{cid |> String.slice(0, 16)}… (#{mib(size2)} MiB)")
  end

  defp watch_transfer(peer, id) do
    t = peer |> call(Keyring.Sync, :transfers, []) |> Enum.find(&(&1.id == id))
    pct = if t.bytes_total > 0, do: round(t.bytes_done * 100 / t.bytes_total), else: 0
    bar = String.duplicate("#", div(pct, 4)) |> String.pad_trailing(25)
    rate = Float.round(t.rate / 1_048_576, 1)

    IO.write(
      :stderr,
      "\r  [#{bar}] #{pct}% #{mib(t.bytes_done)}/#{mib(t.bytes_total)} MiB, #{rate} MiB/s   "
    )

    if t.stage == :running do
      Process.sleep(50)
      watch_transfer(peer, id)
    else
      t
    end
  end

  defp mib(bytes), do: Float.round(bytes / 1_048_576, 1)

  defp call(peer, m, f, a, timeout \\ 15_000), do: :peer.call(peer, m, f, a, timeout)

  # --stay: the surviving nodes keep running so a person can look at them.
  defp stay(survivors) do
    say("\nThe surviving nodes stay up (Ctrl-C twice to stop):")
    for {peer, node} <- survivors, do: say("  #{node}  #{call(peer, Keyring.Gateway, :url, [])}")
    Process.sleep(:infinity)
  end

  defp wait_until(fun, deadline \\ nil) do
    deadline = deadline || now() + 30_000

    cond do
      fun.() -> :ok
      now() > deadline -> Mix.raise("the demo cluster did not converge in 30 s")
      true -> Process.sleep(20) && wait_until(fun, deadline)
    end
  end

  defp now, do: System.monotonic_time(:millisecond)
  defp say(text), do: Mix.shell().info(text)
end
