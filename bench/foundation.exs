# Foundation benchmarks: BLAKE3 and Ed25519 through the NIF vs direct Rust vs
# :crypto, and the store's durable puts/gets vs a DETS table, with a
# scheduler-latency probe running the whole time.
#
#   mix run --no-start bench/foundation.exs            (or: bin/bench)
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
  # Sleeps 1 ms in a loop and records by how much each wake-up overshoots.
  # If a NIF held a scheduler, the probe's wake-ups would be late.
  def start do
    parent = self()
    spawn_link(fn -> loop(parent, []) end)
  end

  def stop(pid) do
    send(pid, :stop)

    receive do
      {:probe, samples} -> Enum.sort(samples)
    end
  end

  defp loop(parent, acc) do
    receive do
      :stop -> send(parent, {:probe, acc})
    after
      0 ->
        t0 = System.monotonic_time(:microsecond)

        receive do
          :stop -> send(parent, {:probe, acc})
        after
          1 -> loop(parent, [System.monotonic_time(:microsecond) - t0 - 1000 | acc])
        end
    end
  end
end

IO.puts("== Keyring foundation benchmarks (#{System.schedulers_online()} schedulers)")

# --- scheduler probe baseline: idle ---------------------------------------------
probe = Bench.SchedulerProbe.start()
Process.sleep(2_000)
idle = Bench.SchedulerProbe.stop(probe)
probe = Bench.SchedulerProbe.start()

# --- direct Rust baseline (same machine, same moment) ----------------------------
IO.puts("\n-- building and running the direct-Rust baseline (bench/native)")

{out, 0} =
  System.cmd("cargo", [
    "run",
    "--release",
    "-q",
    "-p",
    "keyring_bench",
    "--target-dir",
    "_build/cargo",
    "--",
    "crypto",
    "5",
    "0.3"
  ])

rust =
  for line <- String.split(out, "\n", trim: true), into: %{} do
    [k, v] = String.split(line)
    {k, String.to_float(v)}
  end

# --- BLAKE3 -----------------------------------------------------------------------
IO.puts("\n-- BLAKE3 throughput (bytes/s)")
Bench.row(["size", "NIF", "Rust", ":crypto sha256", "NIF/Rust", "NIF/sha256"])

blake3 =
  for size <- [1024, 65_536, 1_048_576, 67_108_864] do
    data = :binary.copy(<<0xA5>>, size)
    {rounds, ms} = if size > 1_048_576, do: {5, 1_000}, else: {5, 300}
    nif = Bench.rate(fn -> Keyring.Hash.hash(data) end, rounds, ms) * size
    sha = Bench.rate(fn -> :crypto.hash(:sha256, data) end, rounds, ms) * size
    r = rust["blake3_#{size}"]

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
dir = Path.join(System.tmp_dir!(), "keyring-bench-#{System.unique_integer([:positive])}")
{:ok, _} = Keyring.start_link(data_dir: dir)
msg = :binary.copy(<<7>>, 64)
pk = Keyring.Identity.public_key()
sig = Keyring.Identity.sign(msg)
{cpub, cpriv} = :crypto.generate_key(:eddsa, :ed25519)
csig = :crypto.sign(:eddsa, :none, msg, [cpriv, :ed25519])

nif_sign = Bench.rate(fn -> Keyring.Identity.sign(msg) end)
nif_verify = Bench.rate(fn -> Keyring.Identity.verify(pk, msg, sig) end)
c_sign = Bench.rate(fn -> :crypto.sign(:eddsa, :none, msg, [cpriv, :ed25519]) end)
c_verify = Bench.rate(fn -> :crypto.verify(:eddsa, :none, msg, csig, [cpub, :ed25519]) end)
Bench.row(["op", "NIF", "Rust", ":crypto", "NIF/Rust", "NIF/:crypto"])

Bench.row([
  "sign",
  Bench.fmt_rate(nif_sign),
  Bench.fmt_rate(rust["ed25519_sign"]),
  Bench.fmt_rate(c_sign),
  Bench.ratio(nif_sign, rust["ed25519_sign"]),
  Bench.ratio(nif_sign, c_sign)
])

Bench.row([
  "verify",
  Bench.fmt_rate(nif_verify),
  Bench.fmt_rate(rust["ed25519_verify"]),
  Bench.fmt_rate(c_verify),
  Bench.ratio(nif_verify, rust["ed25519_verify"]),
  Bench.ratio(nif_verify, c_verify)
])

# --- Store vs DETS ----------------------------------------------------------------
defmodule Bench.Store do
  @duration_ms 2_000

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

  def gets(get_fun, keys, callers) do
    keys = List.to_tuple(keys)
    deadline = System.monotonic_time(:millisecond) + @duration_ms
    t0 = System.monotonic_time()

    total =
      1..callers
      |> Enum.map(fn _ -> Task.async(fn -> get_loop(get_fun, keys, deadline, 0) end) end)
      |> Enum.map(&Task.await(&1, 120_000))
      |> Enum.sum()

    total / Bench.seconds_since(t0)
  end

  defp get_loop(get_fun, keys, deadline, n) do
    if rem(n, 64) == 0 and System.monotonic_time(:millisecond) >= deadline do
      n
    else
      {:ok, _} = get_fun.(elem(keys, :rand.uniform(tuple_size(keys)) - 1))
      get_loop(get_fun, keys, deadline, n + 1)
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
    k = Bench.Store.puts(keyring_put, size, callers)
    after_ = Keyring.Store.stats()
    batch = (after_.writes - before.writes) / max(after_.commits - before.commits, 1)
    d = Bench.Store.puts(dets_put, size, callers)

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

IO.puts("\n-- Store: gets/s of 4 KiB blobs (random keys among 20,000)")

keys =
  for i <- 1..20_000 do
    data = <<i::32, 0::size(4092 * 8)>>
    {:ok, cid} = Keyring.Store.put(data)
    :ok = :dets.insert(dets, {cid, data})
    cid
  end

raw_keys = Enum.map(keys, &Keyring.Store.Cid.parse!/1)

Bench.row(["callers", "Keyring", "DETS", "Keyring/DETS"])

get_rows =
  for callers <- [1, 16, 64] do
    k = Bench.Store.gets(&Keyring.Store.get/1, raw_keys, callers)

    d =
      Bench.Store.gets(
        fn key -> {:ok, :dets.lookup(dets, key)} end,
        raw_keys,
        callers
      )

    Bench.row([callers, Bench.fmt_rate(k), Bench.fmt_rate(d), Bench.ratio(k, d)])
    {callers, k}
  end

:dets.close(dets)
busy = Bench.SchedulerProbe.stop(probe)

IO.puts("\n-- Scheduler latency: overshoot of a 1 ms sleep (µs)")
Bench.row(["phase", "samples", "p50", "p99", "max"])

for {phase, s} <- [{"idle", idle}, {"under bench", busy}] do
  Bench.row([phase, length(s), Bench.percentile(s, 0.5), Bench.percentile(s, 0.99), List.last(s)])
end

IO.puts("\n-- Goals")
goal = fn ok?, text -> IO.puts("#{if ok?, do: "PASS", else: "MISS"}  #{text}") end

for {size, r} <- blake3,
    size >= 65_536,
    do: goal.(r >= 0.9, "BLAKE3 NIF >= 90% of Rust at #{size} B (#{Bench.ratio(r, 1)})")

goal.(nif_sign / rust["ed25519_sign"] >= 0.85, "Ed25519 sign NIF >= 85% of Rust")
goal.(nif_verify / rust["ed25519_verify"] >= 0.85, "Ed25519 verify NIF >= 85% of Rust")
{_, _, put64} = Enum.find(store_rows, fn {s, c, _} -> s == 4096 and c == 64 end)
goal.(put64 >= 10_000, ">= 10,000 durable 4 KiB puts/s with 64 callers (#{round(put64)})")
best_get = get_rows |> Enum.map(&elem(&1, 1)) |> Enum.max()
goal.(best_get >= 200_000, ">= 200,000 gets/s (#{round(best_get)})")
p99 = Bench.percentile(busy, 0.99)
goal.(p99 < 1_000, "scheduler p99 overshoot < 1 ms under load (#{p99} µs)")

Supervisor.stop(Keyring)
File.rm_rf!(dir)
