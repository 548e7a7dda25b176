# Keyring mesh benchmark: handshakes/s, RPC round trips/s (sequential, and
# 64 concurrent callers with p50/p99 latency), bulk throughput and CPU per
# GiB of the QUIC mesh, compared in the same run with a plain quinn
# client/server (bench/native quic_baseline: same TLS 1.3 + Ed25519 RPK, no
# Keyring framing, no BEAM), with keyring_net alone (bench/native
# mesh_baseline: the same mesh with a Rust echo handler, no BEAM), and with
# Erlang distribution over TLS (-proto_dist inet_tls, self-signed cert made
# here with openssl) and plain (unencrypted, reference only) distribution
# between two :peer nodes.
#
#   ELIXIR_ERL_OPTIONS="+sbwt none +sbwtdcpu none +sbwtdio none" \
#     mix run --no-start bench/mesh.exs [BULK_MIB]     (default 256; ROUNDS=5)
#
# ONLY=rpc measures just the round trips (sequential and 64 callers): the
# baselines' bulk runs shrink to 1 MiB and Keyring's handshakes and bulk are
# skipped, so only the RPC goals are printed.
#
# (+sbwt none: idle schedulers do not spin, so CPU time measures work; the
# :peer nodes get the same flags.)
#
# Needs: a release build of the NIF (mix compile), cargo (builds
# quic_baseline), openssl. Rounds interleave the contenders; medians (and medians of
# per-round ratios) are printed. CPU is user+system
# time of the process(es) holding both endpoints, from /proc.

Application.put_env(:keyring, :autostart, false)
{:ok, _} = Application.ensure_all_started(:keyring)
Logger.configure(level: :warning)

defmodule MeshBench do
  def median(xs), do: xs |> Enum.sort() |> Enum.at(div(length(xs), 2))

  def cpu_seconds(os_pid \\ System.pid()) do
    [_, after_comm] = File.read!("/proc/#{os_pid}/stat") |> String.split(")", parts: 2)
    f = String.split(after_comm)
    (String.to_integer(Enum.at(f, 11)) + String.to_integer(Enum.at(f, 12))) / 100
  end

  def time(fun) do
    t0 = System.monotonic_time()
    result = fun.()

    {System.convert_time_unit(System.monotonic_time() - t0, :native, :microsecond) / 1.0e6,
     result}
  end

  # --- Keyring mesh ---------------------------------------------------------

  def keyring_setup do
    # A directory no earlier run used: unique_integer starts over in every VM,
    # and a reused one brings back the previous run's keyrings, so calls
    # would pick an old keyring's link while the benchmark disconnects the new one.
    tmp = Path.join(System.tmp_dir!(), "keyring-bench-#{System.os_time()}")
    File.rm_rf!(tmp)
    {:ok, _} = Keyring.start_link(name: BenchA, data_dir: tmp <> "/a")
    {:ok, _} = Keyring.start_link(name: BenchB, data_dir: tmp <> "/b")
    {:ok, ring} = Keyring.Ring.create("bench", instance: BenchA)
    {:ok, invite} = Keyring.Ring.invite(ring, instance: BenchA)
    {:ok, ^ring} = Keyring.join(invite, instance: BenchB)
    :ok = Keyring.expose(:echo, & &1, instance: BenchB)
    counter = :counters.new(1, [:atomics])
    parent = self()

    :ok =
      Keyring.expose(
        :sink,
        fn bin ->
          :counters.add(counter, 1, byte_size(bin))
          send(parent, :sunk)
        end,
        instance: BenchB
      )

    b = Keyring.Identity.node_id(instance: BenchB)
    {:ok, "x"} = Keyring.call(b, :echo, "x", instance: BenchA)

    %{
      ring: ring,
      b: b,
      b_key: Keyring.Identity.public_key(instance: BenchB),
      counter: counter,
      tmp: tmp
    }
  end

  def keyring_handshakes(ctx, n) do
    mesh = Keyring.Instance.fetch!(BenchA, :mesh)

    {secs, _} =
      time(fn ->
        for _ <- 1..n do
          Keyring.Native.mesh_disconnect(mesh, ctx.ring, ctx.b_key)
          {:ok, "x"} = Keyring.call(ctx.b, :echo, "x", instance: BenchA)
        end
      end)

    n / secs
  end

  def keyring_rpc(ctx, n) do
    payload = :binary.copy(<<7>>, 64)

    {secs, _} =
      time(fn ->
        for _ <- 1..n, do: {:ok, _} = Keyring.call(ctx.b, :echo, payload, instance: BenchA)
      end)

    n / secs
  end

  # `callers` processes calling at once, `n` calls in all; the rate and the
  # p50/p99 of the calls' latencies (µs).
  def concurrent(n, callers, call) do
    {secs, lats} =
      time(fn ->
        1..callers
        |> Enum.map(fn _ ->
          Task.async(fn ->
            for _ <- 1..div(n, callers) do
              t0 = System.monotonic_time()
              call.()
              System.monotonic_time() - t0
            end
          end)
        end)
        |> Task.await_many(300_000)
        |> List.flatten()
      end)

    sorted = Enum.sort(lats)
    pct = fn p -> Enum.at(sorted, min(length(sorted) - 1, trunc(length(sorted) * p))) end
    us = fn native -> System.convert_time_unit(native, :native, :nanosecond) / 1000 end
    {length(lats) / secs, us.(pct.(0.5)), us.(pct.(0.99))}
  end

  def keyring_rpc_concurrent(ctx, n, callers) do
    payload = :binary.copy(<<7>>, 64)

    concurrent(n, callers, fn ->
      {:ok, _} = Keyring.call(ctx.b, :echo, payload, instance: BenchA)
    end)
  end

  def keyring_bulk(ctx, mib) do
    bin = :crypto.strong_rand_bytes(1_048_576)
    :counters.put(ctx.counter, 1, 0)
    cpu0 = cpu_seconds()
    senders = 8

    {secs, _} =
      time(fn ->
        1..senders
        |> Enum.map(fn i ->
          count = div(mib, senders) + if(i <= rem(mib, senders), do: 1, else: 0)

          Task.async(fn ->
            for _ <- 1..count//1,
                do: :ok = Keyring.cast(ctx.b, :sink, bin, instance: BenchA, timeout: 60_000)
          end)
        end)
        |> Task.await_many(120_000)

        for _ <- 1..mib, do: receive(do: (:sunk -> :ok), after: (60_000 -> raise "bulk stalled"))
      end)

    {mib / secs, (cpu_seconds() - cpu0) / (mib / 1024)}
  end

  # --- plain quinn, and keyring_net without the BEAM -----------------------------

  def build_native do
    {_, 0} =
      System.cmd(
        "cargo",
        ~w(build --release -q -p keyring_bench --bins --target-dir _build/cargo),
        stderr_to_stdout: true
      )
  end

  def quinn(mib), do: native("quic_baseline", ["#{mib}", "3000", "200"])

  def mesh_rust, do: native("mesh_baseline", ["3000", "64", "200"])

  defp native(bin, args) do
    {out, 0} = System.cmd(Path.expand("_build/cargo/release/#{bin}"), args)

    out
    |> String.split("\n", trim: true)
    |> Map.new(fn line ->
      [k, v] = String.split(line, "=")
      {String.to_atom(k), v |> Float.parse() |> elem(0)}
    end)
  end

  # --- Erlang distribution ----------------------------------------------------

  def dist(mode, mib) do
    dir = Path.join(System.tmp_dir!(), "keyring-bench-dist-#{System.os_time()}")
    File.mkdir_p!(dir)
    tls_args = if mode == :tls, do: tls_args(dir), else: []
    paths = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])
    u = System.unique_integer([:positive])

    start = fn n ->
      {:ok, peer, node} =
        :peer.start(%{
          name: :"bench_#{n}_#{u}",
          host: ~c"127.0.0.1",
          longnames: true,
          connection: :standard_io,
          args:
            [~c"+sbwt", ~c"none", ~c"+sbwtdcpu", ~c"none", ~c"+sbwtdio", ~c"none"] ++
              tls_args ++ paths
        })

      {:module, mod, bin, _} = dist_module()
      {:module, ^mod} = :peer.call(peer, :code, :load_binary, [mod, ~c"dist_sink.beam", bin])
      {peer, node, :peer.call(peer, :os, :getpid, []) |> List.to_integer()}
    end

    {pa, _na, os_a} = start.(:a)
    {pb, nb, os_b} = start.(:b)
    true = :peer.call(pa, :net_kernel, :connect_node, [nb])
    cpu = fn -> cpu_seconds(os_a) + cpu_seconds(os_b) end
    cpu0 = cpu.()
    secs = :peer.call(pa, MeshBench.DistSink, :run, [nb, mib], 120_000)
    cpu_used = cpu.() - cpu0
    rpc_secs = :peer.call(pa, MeshBench.DistSink, :rpc, [nb, 3000], 120_000)

    {conc, p50, p99} =
      :peer.call(pa, MeshBench.DistSink, :rpc_concurrent, [nb, 6400, 64], 300_000)

    :peer.stop(pa)
    :peer.stop(pb)
    # :peer.stop/1 returns before the OS process has exited and given back
    # its memory; without waiting, that teardown eats into the next
    # contender's run.
    wait_exited([os_a, os_b], System.monotonic_time(:millisecond) + 10_000)
    File.rm_rf!(dir)

    %{
      bulk_mib_per_s: mib / secs,
      cpu_s_per_gib: cpu_used / (mib / 1024),
      rpc_per_s: 3000 / rpc_secs,
      rpc_concurrent_per_s: conc,
      rpc_concurrent_p50_us: p50,
      rpc_concurrent_p99_us: p99
    }
  end

  defp wait_exited(os_pids, deadline, pause) do
    Process.sleep(pause)
    wait_exited(os_pids, deadline)
  end

  defp wait_exited(os_pids, deadline) do
    alive = Enum.filter(os_pids, &File.exists?("/proc/#{&1}"))

    cond do
      alive == [] -> :ok
      System.monotonic_time(:millisecond) > deadline -> raise "peer VMs did not exit"
      true -> wait_exited(alive, deadline, 20)
    end
  end

  defp tls_args(dir) do
    cert = Path.join(dir, "cert.pem")
    key = Path.join(dir, "key.pem")

    {_, 0} =
      System.cmd(
        "openssl",
        ~w(req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1) ++
          ["-keyout", key, "-out", cert],
        stderr_to_stdout: true
      )

    opts = Path.join(dir, "dist.conf")

    File.write!(opts, """
    [{server, [{certfile, "#{cert}"}, {keyfile, "#{key}"}, {verify, verify_none},
               {versions, ['tlsv1.3']}]},
     {client, [{verify, verify_none}, {versions, ['tlsv1.3']}]}].
    """)

    [~c"-proto_dist", ~c"inet_tls", ~c"-ssl_dist_optfile", String.to_charlist(opts)]
  end

  # Defined once; its object code is loaded into the :peer nodes.
  defp dist_module do
    case Process.get(:dist_module) do
      nil ->
        mod = define_dist_module()
        Process.put(:dist_module, mod)
        mod

      mod ->
        mod
    end
  end

  defp define_dist_module do
    defmodule DistSink do
      def sink(expected, reply_to), do: loop(0, expected, reply_to)

      defp loop(got, expected, reply_to) when got >= expected,
        do: send(reply_to, {:sink_done, got})

      defp loop(got, expected, reply_to) do
        receive do
          {:data, b} -> loop(got + byte_size(b), expected, reply_to)
        end
      end

      def run(node, mib) do
        pid = Node.spawn(node, __MODULE__, :sink, [mib * 1_048_576, self()])
        bin = :crypto.strong_rand_bytes(1_048_576)
        t0 = System.monotonic_time()
        for _ <- 1..mib, do: send(pid, {:data, bin})
        receive do: ({:sink_done, _} -> :ok)
        System.convert_time_unit(System.monotonic_time() - t0, :native, :microsecond) / 1.0e6
      end

      def rpc(node, n) do
        payload = :binary.copy(<<7>>, 64)
        t0 = System.monotonic_time()
        for _ <- 1..n, do: ^payload = :erpc.call(node, :erlang, :iolist_to_binary, [payload])
        System.convert_time_unit(System.monotonic_time() - t0, :native, :microsecond) / 1.0e6
      end

      def rpc_concurrent(node, n, callers) do
        payload = :binary.copy(<<7>>, 64)
        me = self()
        t0 = System.monotonic_time()

        for _ <- 1..callers do
          spawn_link(fn ->
            lats =
              for _ <- 1..div(n, callers) do
                t = System.monotonic_time()
                ^payload = :erpc.call(node, :erlang, :iolist_to_binary, [payload])
                System.monotonic_time() - t
              end

            send(me, {:lats, lats})
          end)
        end

        lats = for _ <- 1..callers, reduce: [], do: (acc -> receive(do: ({:lats, l} -> l ++ acc)))

        secs =
          System.convert_time_unit(System.monotonic_time() - t0, :native, :microsecond) / 1.0e6

        sorted = Enum.sort(lats)
        at = fn p -> Enum.at(sorted, min(length(sorted) - 1, trunc(length(sorted) * p))) end
        us = fn x -> System.convert_time_unit(x, :native, :nanosecond) / 1000 end
        {length(lats) / secs, us.(at.(0.5)), us.(at.(0.99))}
      end
    end
  end
end

mib =
  case System.argv() do
    [n | _] -> String.to_integer(n)
    _ -> 256
  end

rounds = String.to_integer(System.get_env("ROUNDS", "5"))
rpc_only? = System.get_env("ONLY") == "rpc"
mib = if rpc_only?, do: 1, else: mib

IO.puts(
  "bulk: #{mib} x 1 MiB messages; #{rounds} rounds, each running every contender once " <>
    "in turn, so a ratio compares runs made under the same machine load; medians\n"
)

ctx = MeshBench.keyring_setup()
MeshBench.build_native()

contenders = [
  # The same order as quic_baseline: handshakes, round trips, then bulk on
  # the connection the round trips used.
  keyring: fn ->
    handshakes = unless rpc_only?, do: MeshBench.keyring_handshakes(ctx, 200)
    rpc = MeshBench.keyring_rpc(ctx, 3000)
    {conc, p50, p99} = MeshBench.keyring_rpc_concurrent(ctx, 6400, 64)

    rpcs = %{
      rpc_per_s: rpc,
      rpc_concurrent_per_s: conc,
      rpc_concurrent_p50_us: p50,
      rpc_concurrent_p99_us: p99
    }

    if rpc_only? do
      rpcs
    else
      {bulk, cpu} = MeshBench.keyring_bulk(ctx, mib)
      Map.merge(rpcs, %{handshakes_per_s: handshakes, bulk_mib_per_s: bulk, cpu_s_per_gib: cpu})
    end
  end,
  quinn: fn -> MeshBench.quinn(mib) end,
  rust_mesh: fn -> MeshBench.mesh_rust() end,
  tls: fn -> MeshBench.dist(:tls, mib) end,
  plain: fn -> MeshBench.dist(:plain, mib) end
]

# Each round runs every contender once, starting one further along the list,
# so none always runs first (right after the previous round's VMs stopped).
results =
  for round <- 1..rounds do
    {later, first} = Enum.split(contenders, rem(round - 1, length(contenders)))

    r =
      Map.new(first ++ later, fn {who, run} ->
        # A moment for the previous contender's sockets and memory to settle.
        Process.sleep(500)
        {who, run.()}
      end)

    IO.puts(
      "round #{round}: rpc/s keyring #{round(r.keyring.rpc_per_s)}, " <>
        "quinn #{round(r.quinn.rpc_per_s)}, TLS dist #{round(r.tls.rpc_per_s)}; " <>
        "64 callers keyring #{round(r.keyring.rpc_concurrent_per_s)}, " <>
        "TLS dist #{round(r.tls.rpc_concurrent_per_s)}" <>
        if(rpc_only?,
          do: "",
          else:
            "; MiB/s keyring #{round(r.keyring.bulk_mib_per_s)}, " <>
              "quinn #{round(r.quinn.bulk_mib_per_s)}, TLS dist #{round(r.tls.bulk_mib_per_s)}"
        )
    )

    r
  end

med = fn who, k -> results |> Enum.map(& &1[who][k]) |> MeshBench.median() end
ratio = fn a, b, k -> results |> Enum.map(&(&1[a][k] / &1[b][k])) |> MeshBench.median() end
# A CPU ratio where less is better: keyring's CPU-s/GiB over quinn's.
f = fn x -> :erlang.float_to_binary(x * 1.0, decimals: 1) end

row = fn name, cells ->
  IO.puts(
    String.pad_trailing(name, 30) <>
      Enum.map_join(cells, "", fn c -> String.pad_leading(c, 12) end)
  )
end

cell = fn who, k ->
  case results |> hd() |> Map.fetch!(who) |> Map.fetch(k) do
    {:ok, _} -> f.(med.(who, k))
    :error -> "-"
  end
end

keys = [
  :handshakes_per_s,
  :rpc_per_s,
  :rpc_concurrent_per_s,
  :rpc_concurrent_p50_us,
  :rpc_concurrent_p99_us,
  :bulk_mib_per_s,
  :cpu_s_per_gib
]

row.("", ["handshake/s", "rpc/s", "rpc64/s", "p50 us", "p99 us", "MiB/s", "CPU-s/GiB"])

for {who, name} <- [
      keyring: "keyring mesh (QUIC, BEAM)",
      rust_mesh: "keyring_net alone (Rust)",
      quinn: "plain quinn (Rust)",
      tls: "erlang dist over TLS",
      plain: "erlang dist plain (ref.)"
    ],
    do: row.(name, Enum.map(keys, &cell.(who, &1)))

IO.puts("")

goal = fn what, value, ok?, want ->
  IO.puts(
    String.pad_trailing(what, 44) <>
      String.pad_leading(value, 10) <>
      "   (goal #{want}#{if ok?, do: ", met", else: ", NOT met"})"
  )
end

x = fn r -> :erlang.float_to_binary(r, decimals: 2) <> " x" end
pc = fn r -> f.(100 * r) <> " %" end

r = ratio.(:keyring, :tls, :rpc_per_s)
goal.("sequential RPC / TLS distribution", x.(r), r >= 1.3, ">= 1.3 x")
r = ratio.(:keyring, :quinn, :rpc_per_s)
goal.("sequential RPC / plain quinn", pc.(r), r >= 0.7, ">= 70 %")
r = ratio.(:keyring, :tls, :rpc_concurrent_per_s)
goal.("64 concurrent callers / TLS distribution", x.(r), r >= 1.5, ">= 1.5 x")

unless rpc_only? do
  r = ratio.(:keyring, :quinn, :bulk_mib_per_s)
  goal.("bulk / plain quinn", pc.(r), r >= 0.85, ">= 85 %")
  r = ratio.(:keyring, :quinn, :cpu_s_per_gib)
  goal.("bulk CPU-s/GiB / plain quinn's", x.(r), r <= 1.2, "<= 1.2 x")
  r = ratio.(:keyring, :quinn, :handshakes_per_s)
  goal.("handshakes / plain quinn", pc.(r), r >= 0.75, ">= 75 %")
  r = ratio.(:keyring, :tls, :bulk_mib_per_s)
  goal.("bulk / TLS distribution (reference)", x.(r), true, "none")
end

# The protocol seam's stream-type byte, measured on plain quinn: round trips
# with a byte in front of each request (routed by it) against without.
byte =
  results |> Enum.map(&(&1.quinn.rpc_preamble_per_s / &1.quinn.rpc_per_s)) |> MeshBench.median()

IO.puts(
  "\nstream-type byte (plain quinn): round trips with it / without: #{pc.(byte)}; " <>
    "an ALPN per protocol would cost a handshake per protocol and pair " <>
    "(#{f.(1.0e6 / med.(:quinn, :handshakes_per_s))} us each here)"
)

File.rm_rf!(ctx.tmp)
