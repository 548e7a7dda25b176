# Cluster-plane benchmark: propagation latency, idle cost, catch-up, down detection.
#
#   mix run --no-start bench/cluster.exs                    # everything (~3-4 min)
#   mix run --no-start bench/cluster.exs --ns 2,5 --trials 10 --sizes 10000 --idle-n 5
#
# Every node is its own BEAM VM (`:peer`, `+S 1`, loopback distribution), like
# the anchors in notes/reference/beam_anchors.md. Measured the same way:
#   - propagation: one `Keyring.CRDT.put` on node 1, time until EVERY other
#     node's on_change callback has fired (OS clock, same host); p50/p95/max
#     over trials;
#   - idle: Erlang distribution bytes sent (send_oct of the dist ports, summed
#     over all VMs) and CPU (runtime ms, summed) over a window, with presence
#     heartbeats at their default (5 s) plus one idle Keyring.CRDT;
#   - catch-up: K keys on node A, a fresh replica starts on node B: time until
#     B holds all K, largest message B received (traced), keys left on A;
#   - down: kill one VM, time until every survivor's coordinator emitted :down.
#
# Results on the 2-vCPU dev box (full run, 20 trials, shared with other builds):
#   | N  | p50 all | p95 all | max    | down everywhere |
#   | 2  | 0.2 ms  | 0.5 ms  | 0.6 ms | 0.9 ms          |
#   | 5  | 0.6 ms  | 0.8 ms  | 1.2 ms | 1.5 ms          |
#   | 10 | 1.3 ms  | 4.1 ms  | 6.5 ms | 7.7 ms          |
#   | 20 | 2.4 ms  | 3.6 ms  | 5.5 ms | 10.7 ms         |
#   idle N=20: 1.68 KB/s dist traffic, 4.1 ms/s CPU (all 20 VMs)
#   catch-up: 10k keys 127 ms, 100k keys 1.04-1.38 s; largest message 254 KiB;
#   writer and fresh replica both end with all keys.
#   Goals: p95 <= 50 ms at N=20, idle <= 2 KB/s, 100k <= 2 s with no message
#   > 1 MB, down <= 1 s: all met. Anchors: DeltaCrdt p95 167 ms, 3.9 MB/s idle,
#   100k in 5-8 s with 18-35 MB messages; Tracker p95 0.9-1.5 s (default).
Code.require_file("../test/support/peers.ex", __DIR__)
Code.require_file("../test/support/distribution.ex", __DIR__)

defmodule Bench.Cluster do
  alias Keyring.Test.Peers

  @probe """
  defmodule Bench.Probe do
    def setup do
      parent = self()
      pid = spawn(fn ->
        :ets.new(:bench_probe, [:named_table, :public, :set])
        send(parent, :ready)
        Keyring.Coordinator.subscribe()
        loop()
      end)
      receive do :ready -> :ok end
      {:ok, pid}
    end

    defp loop do
      receive do
        {:keyring_presence, kind, p} -> :ets.insert(:bench_probe, {{kind, p.node}, :os.system_time(:microsecond)})
        _ -> :ok
      end
      loop()
    end

    def changed(diffs) do
      t = :os.system_time(:microsecond)
      for {:put, k, _} <- diffs, do: :ets.insert(:bench_probe, {k, t})
      :ok
    end

    def lookup(k), do: (case :ets.lookup(:bench_probe, k) do [{_, t}] -> t; [] -> nil end)

    def start_crdt(opts) do
      Supervisor.start_child(Keyring.Application.Supervisor, {Keyring.CRDT, opts})
    end

    def dist_bytes do
      for {_node, port} <- :erlang.system_info(:dist_ctrl), is_port(port), reduce: 0 do
        acc -> case :inet.getstat(port, [:send_oct]) do {:ok, [send_oct: n]} -> acc + n; _ -> acc end
      end
    end

    def cpu_ms, do: elem(:erlang.statistics(:runtime), 0)

    def trace_max_message(name) do
      pid = Process.whereis(name)
      tracer = spawn(fn -> trace_loop(0) end)
      :erlang.trace(pid, true, [:receive, {:tracer, tracer}])
      tracer
    end

    defp trace_loop(max) do
      receive do
        {:trace, _, :receive, msg} -> trace_loop(max(max, :erlang.external_size(msg)))
        {:get, from} -> send(from, {:max, max}); trace_loop(max)
      end
    end

    def max_message(tracer) do
      send(tracer, {:get, self()})
      receive do {:max, m} -> m after 5_000 -> nil end
    end
  end
  """

  def run(args) do
    {opts, _, _} =
      OptionParser.parse(args,
        strict: [
          ns: :string,
          trials: :integer,
          sizes: :string,
          idle_n: :integer,
          idle_s: :integer
        ]
      )

    ns = parse_list(opts[:ns] || "2,5,10,20")
    trials = opts[:trials] || 20
    sizes = parse_list(opts[:sizes] || "10000,100000")
    idle_n = opts[:idle_n] || 20
    idle_s = opts[:idle_s] || 20
    [{Bench.Probe, bin}] = Code.compile_string(@probe)
    Process.put(:probe_bin, bin)
    IO.puts("Keyring cluster benchmark (peers: one BEAM VM each, +S 1, loopback)\n")

    IO.puts(
      "## propagation (one put on node 1 -> every other node's on_change) and down detection"
    )

    IO.puts("| N | p50 all | p95 all | max | down everywhere after kill |")
    IO.puts("|---|---|---|---|---|")

    for n <- ns do
      peers = start_cluster(n)

      try do
        lat = propagation(peers, trials)
        idle = if n == idle_n, do: idle(peers, idle_s)
        down = down_time(peers)

        IO.puts(
          "| #{n} | #{ms(pct(lat, 50))} | #{ms(pct(lat, 95))} | #{ms(Enum.max(lat))} | #{ms(down)} |"
        )

        if idle, do: Process.put(:idle, {n, idle})
      after
        Peers.stop_all(peers)
      end
    end

    case Process.get(:idle) do
      {n, {bytes_s, cpu_ms_s, secs}} ->
        IO.puts("\n## idle at N=#{n} (#{secs} s window, heartbeat 5 s, all VMs summed)")

        IO.puts(
          "dist traffic: #{Float.round(bytes_s / 1, 1)} B/s, CPU: #{Float.round(cpu_ms_s / 1, 1)} ms/s"
        )

        IO.puts(
          "(anchors at N=20: DeltaCrdt 3.9 MB/s & 228 ms/s; Tracker default 1.3 KB/s & 3 ms/s)"
        )

      nil ->
        :ok
    end

    IO.puts("\n## catch-up of a fresh replica (max_message_bytes 256 KiB default)")
    IO.puts("| keys | catch-up | largest message received | writer keeps | fresh has |")
    IO.puts("|---|---|---|---|---|")
    for k <- sizes, do: catch_up(k)
  end

  defp parse_list(s), do: s |> String.split(",", trim: true) |> Enum.map(&String.to_integer/1)

  defp start_cluster(n) do
    suffix = System.unique_integer([:positive])

    peers =
      1..n
      |> Enum.map(fn i ->
        Task.async(fn -> Peers.start(:"bench#{i}_#{suffix}", erl_args: ["+S", "1"]) end)
      end)
      |> Enum.map(&Task.await(&1, 120_000))

    for p <- peers, do: load_probe(p)
    Peers.connect_all(peers)

    for p <- peers do
      {:ok, _} =
        Peers.call(p, Bench.Probe, :start_crdt, [
          [name: BenchMap, on_change: {Bench.Probe, :changed, []}]
        ])
    end

    wait(fn ->
      Enum.all?(peers, &(length(Peers.call(&1, Keyring.CRDT, :neighbours, [BenchMap])) == n - 1))
    end)

    wait(fn -> Enum.all?(peers, &(length(Peers.active_nodes(&1)) == n)) end)
    peers
  end

  defp load_probe(p) do
    {:module, Bench.Probe} =
      Peers.call(p, :code, :load_binary, [Bench.Probe, ~c"bench_probe", Process.get(:probe_bin)])

    {:ok, _} = Peers.call(p, Bench.Probe, :setup, [])
  end

  defp propagation([first | rest], trials) do
    for i <- 1..trials do
      key = {:bench, i, System.unique_integer()}
      :ok = Peers.call(first, Keyring.CRDT, :put, [BenchMap, key, i])
      t0 = Peers.call(first, Bench.Probe, :lookup, [key])

      times =
        wait(fn ->
          ts = Enum.map(rest, &Peers.call(&1, Bench.Probe, :lookup, [key]))
          if Enum.all?(ts, & &1), do: ts
        end)

      Process.sleep(50)
      (Enum.max(times) - t0) / 1000
    end
  end

  defp idle(peers, secs) do
    # Let start-up traffic (first heartbeats, anti-entropy) settle.
    Process.sleep(6_000)
    b0 = sum(peers, :dist_bytes)
    c0 = sum(peers, :cpu_ms)
    Process.sleep(secs * 1000)
    b1 = sum(peers, :dist_bytes)
    c1 = sum(peers, :cpu_ms)
    {(b1 - b0) / secs, (c1 - c0) / secs, secs}
  end

  defp sum(peers, f), do: peers |> Enum.map(&Peers.call(&1, Bench.Probe, f, [])) |> Enum.sum()

  defp down_time(peers) do
    victim = List.last(peers)
    survivors = Enum.drop(peers, -1)
    t0 = :os.system_time(:microsecond)
    Peers.kill(victim)

    ts =
      wait(fn ->
        ts = Enum.map(survivors, &Peers.call(&1, Bench.Probe, :lookup, [{:down, victim.node}]))
        if Enum.all?(ts, & &1), do: ts
      end)

    (Enum.max(ts) - t0) / 1000
  end

  defp catch_up(k) do
    [a, b] = peers = start_cluster(2)

    try do
      {:ok, _} = Peers.call(a, Bench.Probe, :start_crdt, [[name: BigMap]])

      pairs = Enum.map(1..k, &{"key-#{&1}", &1})
      :ok = Peers.call(a, Keyring.CRDT, :put_all, [BigMap, pairs], 120_000)
      t0 = System.monotonic_time(:microsecond)
      {:ok, _} = Peers.call(b, Bench.Probe, :start_crdt, [[name: BigMap]])
      tracer = Peers.call(b, Bench.Probe, :trace_max_message, [BigMap])
      wait(fn -> Peers.call(b, Keyring.CRDT, :size, [BigMap]) == k end, 5, 120_000)
      dt = (System.monotonic_time(:microsecond) - t0) / 1000
      max = Peers.call(b, Bench.Probe, :max_message, [tracer])
      on_a = Peers.call(a, Keyring.CRDT, :size, [BigMap])
      on_b = Peers.call(b, Keyring.CRDT, :size, [BigMap])
      IO.puts("| #{k} | #{ms(dt)} | #{kb(max)} | #{on_a} | #{on_b} |")
    after
      Peers.stop_all(peers)
    end
  end

  defp wait(fun, every \\ 2, timeout \\ 60_000) do
    deadline = System.monotonic_time(:millisecond) + timeout
    do_wait(fun, every, deadline)
  end

  defp do_wait(fun, every, deadline) do
    case fun.() do
      r when r not in [nil, false] ->
        r

      _ ->
        if System.monotonic_time(:millisecond) > deadline, do: raise("bench wait timed out")
        Process.sleep(every)
        do_wait(fun, every, deadline)
    end
  end

  defp pct(list, p) do
    sorted = Enum.sort(list)
    Enum.at(sorted, min(length(sorted) - 1, round(p / 100 * (length(sorted) - 1))))
  end

  defp ms(nil), do: "n/a"
  defp ms(x), do: "#{Float.round(x / 1, 1)} ms"
  defp kb(nil), do: "n/a"
  defp kb(b), do: "#{Float.round(b / 1024, 1)} KiB"
end

Bench.Cluster.run(System.argv())
