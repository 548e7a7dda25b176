# Foundation benchmarks: BLAKE3 and Ed25519 through the NIF vs direct Rust vs
# :crypto, and the store's durable puts/gets vs a DETS table, with a
# scheduler-latency probe running the whole time.
#
#   bin/bench foundation      (= MIX_ENV=prod mix run --no-start bench/foundation.exs)
#
# Every figure is the median of several rounds; ratios compare numbers
# measured in this same run. The machine is shared: read ratios, not absolutes.

defmodule Bench do
  def median(xs), do: xs |> Enum.sort() |> Enum.at(div(length(xs), 2))

  def percentile(sorted, p),
    do: Enum.at(sorted, min(length(sorted) - 1, trunc(length(sorted) * p)))

  # Operations per second of `fun` in a tight loop, median of `rounds` rounds.
  def rate(fun, rounds \\ 5, ms \\ 300) do
    Enum.map(1..rounds, fn _ ->
      t0 = System.monotonic_time()
      deadline = t0 + System.convert_time_unit(ms, :millisecond, :native)
      n = loop(fun, deadline, 0)
      n / seconds_since(t0)
    end)
    |> median()
  end

  defp loop(fun, deadline, n) do
    fun.()
    fun.()
    fun.()
    fun.()
    if System.monotonic_time() < deadline, do: loop(fun, deadline, n + 4), else: n + 4
  end

  def seconds_since(t0),
    do: System.convert_time_unit(System.monotonic_time() - t0, :native, :microsecond) / 1.0e6

  def fmt_rate(x) when x >= 1.0e9, do: :io_lib.format("~.2f G", [x / 1.0e9]) |> to_string()
  def fmt_rate(x) when x >= 1.0e6, do: :io_lib.format("~.2f M", [x / 1.0e6]) |> to_string()
  def fmt_rate(x) when x >= 1.0e3, do: :io_lib.format("~.1f k", [x / 1.0e3]) |> to_string()
  def fmt_rate(x), do: :io_lib.format("~.1f", [x / 1.0]) |> to_string()

  def ratio(a, b), do: :io_lib.format("~.2f", [a / b]) |> to_string()

  def row(cols), do: IO.puts(Enum.map_join(cols, "", &String.pad_trailing(to_string(&1), 16)))
end

defmodule Bench.SchedulerProbe do
  # Two views of scheduler health, tagged by benchmark phase (`phase/2`), so
  # Keyring's work and the baselines' (:crypto, DETS) are reported apart:
  # - a process asks to be woken at each millisecond boundary (absolute
  #   timers) and records how late it actually runs: if a NIF held a
  #   scheduler, wake-ups would be late;
  # - :erlang.system_monitor reports every process or port that ran more
  #   than 1 ms without yielding (long_schedule). Runs on dirty schedulers
  #   count too (that is where long NIFs belong), so this is context, not a
  #   verdict; the probe is the measure.
  def start do
    parent = self()
    monitor = spawn_link(fn -> monitor_loop(parent, :setup, []) end)
    :erlang.system_monitor(monitor, [{:long_schedule, 1}])
    # At max priority the probe runs as soon as its scheduler reaches a
    # scheduling point, so run-queue length does not delay it; a scheduler
    # held by a NIF (or the OS preempting the scheduler thread) does.
    probe =
      spawn_link(fn ->
        Process.flag(:priority, :max)
        probe_loop(parent, :setup, [])
      end)

    {probe, monitor}
  end

  def phase({probe, monitor}, phase) do
    send(probe, {:phase, phase})
    send(monitor, {:phase, phase})
    :ok
  end

  # %{phase => {sorted lateness samples, long_schedule events}}
  def stop({probe, monitor}) do
    :erlang.system_monitor(:undefined)
    send(probe, :stop)
    send(monitor, :stop)
    samples = receive do: ({:probe, s} -> s)
    long = receive do: ({:long_schedule, l} -> l)

    for phase <- Enum.uniq(Enum.map(samples, &elem(&1, 0)) ++ Enum.map(long, &elem(&1, 0))),
        into: %{} do
      {phase,
       {samples |> Enum.filter(&(elem(&1, 0) == phase)) |> Enum.map(&elem(&1, 1)) |> Enum.sort(),
        for({^phase, event} <- long, do: event)}}
    end
  end

  defp probe_loop(parent, phase, acc) do
    target = System.monotonic_time(:millisecond) + 1
    ref = :erlang.start_timer(target, self(), :tick, abs: true)

    receive do
      :stop ->
        :erlang.cancel_timer(ref)
        send(parent, {:probe, acc})

      {:phase, new} ->
        :erlang.cancel_timer(ref)
        receive do: ({:timeout, ^ref, :tick} -> :ok), after: (0 -> :ok)
        probe_loop(parent, new, acc)

      {:timeout, ^ref, :tick} ->
        late = System.monotonic_time(:microsecond) - target * 1000
        probe_loop(parent, phase, [{phase, late} | acc])
    end
  end

  defp monitor_loop(parent, phase, acc) do
    receive do
      {:monitor, who, :long_schedule, info} ->
        monitor_loop(parent, phase, [{phase, {who, info}} | acc])

      {:phase, new} ->
        monitor_loop(parent, new, acc)

      :stop ->
        send(parent, {:long_schedule, acc})
    end
  end
end

defmodule Bench.Rust do
  # The direct-Rust baseline (bench/native) as a port: one round per request,
  # so NIF and Rust rounds can alternate and see the same machine load.
  def start do
    {_, 0} =
      System.cmd("cargo", ~w(build --release -q -p keyring_bench --target-dir _build/cargo))

    Port.open({:spawn_executable, "_build/cargo/release/keyring_bench"}, [:binary, {:line, 64}])
  end

  def round(port, what, arg, ms) do
    Port.command(port, "#{what} #{arg} #{ms}\n")

    receive do
      {^port, {:data, {:eol, line}}} -> String.to_float(line)
    end
  end
end

Logger.configure(level: :warning)
IO.puts("== Keyring foundation benchmarks (#{System.schedulers_online()} schedulers)")

# --- scheduler probe baseline: idle ---------------------------------------------
probe = Bench.SchedulerProbe.start()
Bench.SchedulerProbe.phase(probe, :idle)
Process.sleep(2_000)
Bench.SchedulerProbe.phase(probe, :setup)

in_phase = fn phase, fun ->
  Bench.SchedulerProbe.phase(probe, phase)
  result = fun.()
  Bench.SchedulerProbe.phase(probe, :setup)
  result
end

rust = Bench.Rust.start()

# Median of `rounds` rounds each of the NIF and of direct Rust, alternating.
paired = fn nif_fun, what, arg, ms, rounds ->
  pairs =
    for _ <- 1..rounds do
      {in_phase.(:keyring_crypto, fn -> Bench.rate(nif_fun, 1, ms) end),
       in_phase.(:rust_crypto, fn -> Bench.Rust.round(rust, what, arg, ms) end)}
    end

  {Bench.median(Enum.map(pairs, &elem(&1, 0))), Bench.median(Enum.map(pairs, &elem(&1, 1)))}
end

# --- BLAKE3 -----------------------------------------------------------------------
IO.puts("\n-- BLAKE3 throughput (bytes/s)")
Bench.row(["size", "NIF", "Rust", ":crypto sha256", "NIF/Rust", "NIF/sha256"])

blake3 =
  for size <- [1024, 65_536, 1_048_576, 67_108_864] do
    data = :binary.copy(<<0xA5>>, size)
    {rounds, ms} = if size > 1_048_576, do: {7, 1_000}, else: {9, 300}

    {nif, r} = paired.(fn -> Keyring.Hash.hash(data) end, "blake3", size, ms, rounds)

    {nif, r} = {nif * size, r * size}

    sha =
      in_phase.(:otp_crypto, fn ->
        Bench.rate(fn -> :crypto.hash(:sha256, data) end, rounds, ms)
      end) *
        size

    Bench.row([
      size,
      Bench.fmt_rate(nif),
      Bench.fmt_rate(r),
      Bench.fmt_rate(sha),
      Bench.ratio(nif, r),
      Bench.ratio(nif, sha)
    ])

    {size, nif / r}
  end

# --- Ed25519 ----------------------------------------------------------------------
IO.puts("\n-- Ed25519, 64-byte message (ops/s); NIF verify is strict, :crypto's is not")
# A directory no earlier run used (unique_integer starts over in every VM,
# and a reused directory brings back the previous run's store).
dir = Path.join(System.tmp_dir!(), "keyring-bench-#{System.os_time()}")
File.rm_rf!(dir)
# The blob cache is sized to hold the get benchmark's 80 MiB working set, as
# one would configure it for a hot data set (the default is 64 MiB); a run
# with the cache off is printed too.
{:ok, _} = Keyring.start_link(data_dir: dir, store: [cache_bytes: 128 * 1024 * 1024])
msg = :binary.copy(<<7>>, 64)
pk = Keyring.Identity.public_key()
sig = Keyring.Identity.sign(msg)
{cpub, cpriv} = :crypto.generate_key(:eddsa, :ed25519)
csig = :crypto.sign(:eddsa, :none, msg, [cpriv, :ed25519])

{nif_sign, rust_sign} = paired.(fn -> Keyring.Identity.sign(msg) end, "sign", 64, 300, 9)

{nif_verify, rust_verify} =
  paired.(fn -> Keyring.Identity.verify(pk, msg, sig) end, "verify", 64, 300, 9)

c_sign =
  in_phase.(:otp_crypto, fn ->
    Bench.rate(fn -> :crypto.sign(:eddsa, :none, msg, [cpriv, :ed25519]) end)
  end)

c_verify =
  in_phase.(:otp_crypto, fn ->
    Bench.rate(fn -> :crypto.verify(:eddsa, :none, msg, csig, [cpub, :ed25519]) end)
  end)

Bench.row(["op", "NIF", "Rust", ":crypto", "NIF/Rust", "NIF/:crypto"])

Bench.row([
  "sign",
  Bench.fmt_rate(nif_sign),
  Bench.fmt_rate(rust_sign),
  Bench.fmt_rate(c_sign),
  Bench.ratio(nif_sign, rust_sign),
  Bench.ratio(nif_sign, c_sign)
])

Bench.row([
  "verify",
  Bench.fmt_rate(nif_verify),
  Bench.fmt_rate(rust_verify),
  Bench.fmt_rate(c_verify),
  Bench.ratio(nif_verify, rust_verify),
  Bench.ratio(nif_verify, c_verify)
])

# --- Store vs DETS ----------------------------------------------------------------
defmodule Bench.Store do
  @duration_ms 1_000

  # Durable puts/s with `callers` concurrent processes, each writing unique blobs.
  def puts(put_fun, size, callers) do
    deadline = System.monotonic_time(:millisecond) + @duration_ms
    t0 = System.monotonic_time()

    total =
      1..callers
      |> Enum.map(fn c ->
        Task.async(fn -> put_loop(put_fun, size, c, deadline, 0) end)
      end)
      |> Enum.map(&Task.await(&1, 120_000))
      |> Enum.sum()

    total / Bench.seconds_since(t0)
  end

  defp put_loop(put_fun, size, c, deadline, n) do
    if System.monotonic_time(:millisecond) >= deadline do
      n
    else
      data = <<c::32, n::32, 0::size((size - 8) * 8)>>
      :ok = put_fun.(data)
      put_loop(put_fun, size, c, deadline, n + 1)
    end
  end

  # The keys live in :persistent_term (set once, before any run): captured in
  # each caller's closure, the 20,000-key tuple would be copied onto 64
  # process heaps and garbage-collected there, and those multi-millisecond
  # collections showed up in the latency probe as if the store had caused them.
  def gets(get_fun, callers) do
    deadline = System.monotonic_time(:millisecond) + @duration_ms
    t0 = System.monotonic_time()

    total =
      1..callers
      |> Enum.map(fn _ -> Task.async(fn -> get_loop(get_fun, deadline, 0) end) end)
      |> Enum.map(&Task.await(&1, 120_000))
      |> Enum.sum()

    total / Bench.seconds_since(t0)
  end

  defp get_loop(get_fun, deadline, n) do
    if rem(n, 64) == 0 and System.monotonic_time(:millisecond) >= deadline do
      n
    else
      keys = :persistent_term.get(__MODULE__)
      {:ok, _} = get_fun.(elem(keys, :rand.uniform(tuple_size(keys)) - 1))
      get_loop(get_fun, deadline, n + 1)
    end
  end
end

IO.puts("\n-- Store: durable puts/s (each caller waits for its fsynced commit)")
dets_file = Path.join(dir, "bench.dets") |> String.to_charlist()
{:ok, dets} = :dets.open_file(:bench_dets, file: dets_file, type: :set)

keyring_put = fn data ->
  {:ok, _} = Keyring.Store.put(data)
  :ok
end

dets_put = fn data ->
  :ok = :dets.insert(dets, {Keyring.Hash.hash(data), data})
  :dets.sync(dets)
end

Bench.row(["blob", "callers", "Keyring", "DETS+sync", "Keyring/DETS", "batch/commit"])

store_rows =
  for size <- [1024, 4096], callers <- [1, 16, 64] do
    before = Keyring.Store.stats()

    {ks, ds} =
      Enum.unzip(
        for _ <- 1..3 do
          {in_phase.(:keyring_puts, fn -> Bench.Store.puts(keyring_put, size, callers) end),
           in_phase.(:dets_puts, fn -> Bench.Store.puts(dets_put, size, callers) end)}
        end
      )

    {k, d} = {Bench.median(ks), Bench.median(ds)}
    after_ = Keyring.Store.stats()
    batch = (after_.writes - before.writes) / max(after_.commits - before.commits, 1)

    Bench.row([
      size,
      callers,
      Bench.fmt_rate(k),
      Bench.fmt_rate(d),
      Bench.ratio(k, d),
      :io_lib.format("~.1f", [batch])
    ])

    {size, callers, k}
  end

IO.puts(
  "\n-- Store: gets/s of 4 KiB blobs (random keys among 20,000 = 80 MiB; 128 MiB blob cache)"
)

{:ok, _} = Keyring.start_link(name: NoCache, data_dir: dir <> "-nocache", store: [cache_bytes: 0])

keys =
  1..20_000
  |> Task.async_stream(
    fn i ->
      data = <<i::32, 0::size(4092 * 8)>>
      {:ok, cid} = Keyring.Store.put(data)
      {:ok, ^cid} = Keyring.Store.put(data, instance: NoCache)
      :ok = :dets.insert(dets, {cid, data})
      cid
    end,
    max_concurrency: 64
  )
  |> Enum.map(fn {:ok, cid} -> cid end)

:persistent_term.put(
  Bench.Store,
  keys |> Enum.map(&Keyring.Store.Cid.parse!/1) |> List.to_tuple()
)

Bench.row(["callers", "Keyring", "DETS", "Keyring/DETS"])

get_rows =
  for callers <- [1, 16, 64] do
    {ks, ds} =
      Enum.unzip(
        for _ <- 1..3 do
          {in_phase.(:keyring_gets, fn ->
             Bench.Store.gets(&Keyring.Store.get/1, callers)
           end),
           in_phase.(:dets_gets, fn ->
             Bench.Store.gets(fn key -> {:ok, :dets.lookup(dets, key)} end, callers)
           end)}
        end
      )

    {k, d} = {Bench.median(ks), Bench.median(ds)}

    Bench.row([callers, Bench.fmt_rate(k), Bench.fmt_rate(d), Bench.ratio(k, d)])
    {callers, k}
  end

uncached =
  for(
    _ <- 1..3,
    do:
      in_phase.(:kr_gets_nocache, fn ->
        Bench.Store.gets(&Keyring.Store.get(&1, instance: NoCache), 64)
      end)
  )
  |> Bench.median()

IO.puts(
  "64 callers, cache off (every get read by the store's reader threads): " <>
    "#{Bench.fmt_rate(uncached)} (#{Bench.ratio(uncached, elem(List.last(get_rows), 1))} of cached)"
)

%{hits: hits, misses: misses} = Keyring.Store.stats().cache
IO.puts("blob cache hit rate over the get runs: #{round(100 * hits / max(hits + misses, 1))} %")

:dets.close(dets)
phases = Bench.SchedulerProbe.stop(probe)

IO.puts("""

-- Scheduler latency: lateness (µs) of a max-priority process's 1 ms timer
   wake-ups, by phase; "runs > 1 ms" counts long_schedule events (dirty-scheduler
   runs included). Each Keyring phase has a baseline doing the same kind of work
   in pure OTP: read p99 against that, since on a shared 2-core machine the OS
   preempting scheduler threads dominates. Dirty schedulers: #{:erlang.system_info(:dirty_cpu_schedulers)} CPU, #{:erlang.system_info(:dirty_io_schedulers)} I/O.
""")

Bench.row(["phase", "samples", "p50", "p99", "max", "runs > 1 ms"])

for phase <- [
      :idle,
      :keyring_crypto,
      :rust_crypto,
      :otp_crypto,
      :keyring_puts,
      :dets_puts,
      :keyring_gets,
      :dets_gets,
      :kr_gets_nocache
    ] do
  {s, long} = Map.get(phases, phase, {[0], []})

  Bench.row([
    phase,
    length(s),
    Bench.percentile(s, 0.5),
    Bench.percentile(s, 0.99),
    List.last(s),
    length(long)
  ])
end

IO.puts("\n-- Goals")
goal = fn ok?, text -> IO.puts("#{if ok?, do: "PASS", else: "MISS"}  #{text}") end

for {size, r} <- blake3,
    size >= 65_536,
    do: goal.(r >= 0.9, "BLAKE3 NIF >= 90% of Rust at #{size} B (#{Bench.ratio(r, 1)})")

goal.(nif_sign / rust_sign >= 0.85, "Ed25519 sign NIF >= 85% of Rust")
goal.(nif_verify / rust_verify >= 0.85, "Ed25519 verify NIF >= 85% of Rust")
{_, _, put64} = Enum.find(store_rows, fn {s, c, _} -> s == 4096 and c == 64 end)
goal.(put64 >= 10_000, ">= 10,000 durable 4 KiB puts/s with 64 callers (#{round(put64)})")
best_get = get_rows |> Enum.map(&elem(&1, 1)) |> Enum.max()
goal.(best_get >= 200_000, ">= 200,000 gets/s (#{round(best_get)})")
p99 = fn phase -> phases |> Map.get(phase, {[0], []}) |> elem(0) |> Bench.percentile(0.99) end

for {phase, baseline} <- [
      keyring_crypto: :otp_crypto,
      keyring_puts: :dets_puts,
      keyring_gets: :dets_gets
    ] do
  goal.(
    p99.(phase) < 1_000,
    "scheduler wake-up lateness p99 < 1 ms during #{phase} (#{p99.(phase)} µs; " <>
      "#{baseline} under the same kind of load: #{p99.(baseline)} µs)"
  )
end

IO.puts(
  "NOTE  with the blob cache off, a get is a message round trip to a reader thread; " <>
    "p99 lateness then #{p99.(:kr_gets_nocache)} µs (OS run-queue delay of the scheduler threads; see README)"
)

Supervisor.stop(Keyring)
Supervisor.stop(NoCache)
File.rm_rf!(dir)
File.rm_rf!(dir <> "-nocache")
