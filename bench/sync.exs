# Data-plane benchmarks. Part 1: large-blob ingest and reads against the
# disk's own speed, and the cost of outboards. Part 2 (TransferBench, below):
# blob transfer between two members over the QUIC mesh against plain quinn.
#
#   bin/bench sync        (= MIX_ENV=prod mix run --no-start bench/sync.exs)
#   SYNC_GIB=0 bin/bench sync     skips the 1 GiB cases
#   SYNC_PARTS=transfer bin/bench sync    only part 2 (ingest, transfer)
#
# - Ingest: Keyring.Store.put_file/2 of a 256 MiB and a 1 GiB file (random
#   bytes, in the page cache) against `dd if=/dev/zero of=F bs=1M
#   conv=fsync` of the same size on the same file system, rounds
#   alternating which goes first; the ratio is the median of per-round
#   ratios. put_stream/2 (pieces from the BEAM) is measured beside it.
# - Reads of the stored 256 MiB blob: get/2 (one binary), get/2 with
#   verify: true, stream/2 in 1 MiB pieces, against File.read!/1 of the
#   blob's own file in the same VM.
# - Outboards (bench/native ingest_baseline, same file): one-pass ingest
#   with the outboard vs without it (what computing it at put time costs),
#   and computing it later from the stored file (what a lazy design adds to
#   the first serve); our outboard builder vs bao-tree's in memory.
# - 64 KiB durable puts by 64 concurrent callers (blobs over 16 KiB are files).
#
# The machine is shared: read the ratios; absolutes move with the load,
# which is printed.

defmodule SyncBench do
  @mib 1_048_576

  def median(xs), do: xs |> Enum.sort() |> Enum.at(div(length(xs), 2))
  def mbps(bytes, us), do: bytes / us
  def fmt(x), do: x |> round() |> Integer.to_string()
  def fmt2(x), do: :io_lib.format("~.2f", [x]) |> to_string()
  def load, do: File.read!("/proc/loadavg") |> String.split() |> hd()

  def row(cols), do: IO.puts(Enum.map_join(cols, "", &String.pad_trailing(to_string(&1), 18)))

  def random_file(path, bytes) do
    File.open!(path, [:write, :binary], fn f ->
      for _ <- 1..div(bytes, 16 * @mib), do: IO.binwrite(f, :crypto.strong_rand_bytes(16 * @mib))
    end)
  end

  def dd(path, bytes) do
    {us, {_, 0}} =
      :timer.tc(fn ->
        System.cmd(
          "dd",
          ["if=/dev/zero", "of=#{path}", "bs=1M", "count=#{div(bytes, @mib)}", "conv=fsync"],
          stderr_to_stdout: true
        )
      end)

    File.rm!(path)
    settle()
    mbps(bytes, us)
  end

  # Deleting a large file frees its blocks, and this file system discards
  # them (mount option `discard`), which slows the next writer: let that
  # finish outside the timed sections.
  def settle do
    {_, 0} = System.cmd("sync", [])
    Process.sleep(300)
  end

  def delete(cid, k) do
    {:ok, true} = Keyring.Store.delete(cid, k)
    settle()
  end

  def put_file(source, bytes, k) do
    {us, {:ok, cid}} =
      :timer.tc(fn -> Keyring.Store.put_file(source, k ++ [timeout: :infinity]) end)

    {mbps(bytes, us), cid}
  end

  def put_stream(source, bytes, k) do
    {us, {:ok, cid}} =
      :timer.tc(fn ->
        source |> File.stream!([], @mib) |> Keyring.Store.put_stream(k ++ [timeout: :infinity])
      end)

    {mbps(bytes, us), cid}
  end

  def ingest(dir, bytes, rounds, k) do
    source = Path.join(dir, "source-#{div(bytes, @mib)}")
    random_file(source, bytes)
    settle()

    results =
      for r <- 1..rounds do
        target = Path.join(dir, "dd-target")

        {dd, put} =
          if rem(r, 2) == 1 do
            dd = dd(target, bytes)
            {put, cid} = put_file(source, bytes, k)
            delete(cid, k)
            {dd, put}
          else
            {put, cid} = put_file(source, bytes, k)
            delete(cid, k)
            {dd(target, bytes), put}
          end

        {stream, cid} = put_stream(source, bytes, k)
        delete(cid, k)

        IO.puts(
          "  round #{r}: dd #{fmt(dd)} MB/s, put_file #{fmt(put)} MB/s (#{fmt2(put / dd)}), put_stream #{fmt(stream)} MB/s, load #{load()}"
        )

        {dd, put, stream}
      end

    {source, results}
  end

  # Each read is followed by a GC so the next one starts from the same
  # allocator state; File.read!/1 of the blob's own file is the baseline
  # (what this VM gets reading those bytes into one binary).
  def reads(cid, file, bytes, rounds, k) do
    timed = fn fun ->
      {us, n} = :timer.tc(fn -> fun.() end)
      ^bytes = n
      :erlang.garbage_collect()
      mbps(bytes, us)
    end

    for _ <- 1..rounds do
      {timed.(fn -> byte_size(File.read!(file)) end),
       timed.(fn ->
         {:ok, b} = Keyring.Store.get(cid, k ++ [timeout: :infinity])
         byte_size(b)
       end),
       timed.(fn ->
         {:ok, b} = Keyring.Store.get(cid, k ++ [verify: true, timeout: :infinity])
         byte_size(b)
       end),
       timed.(fn ->
         {:ok, s} = Keyring.Store.stream(cid, k)
         Enum.reduce(s, 0, &(byte_size(&1) + &2))
       end)}
    end
  end

  def native_baseline(source, dir) do
    {_, 0} =
      System.cmd(
        "cargo",
        ~w(build --release -q -p keyring_bench --bin ingest_baseline --target-dir _build/cargo),
        stderr_to_stdout: true
      )

    {out, 0} =
      System.cmd(Path.expand("_build/cargo/release/ingest_baseline"), [
        source,
        Path.join(dir, "native"),
        "5"
      ])

    for line <- String.split(out, "\n", trim: true), into: %{} do
      [name, mbps, ms] = String.split(line)
      {name, {String.to_integer(mbps), String.to_float(ms)}}
    end
  end

  def medium_puts(k) do
    blobs = for i <- 1..2_048, do: :crypto.strong_rand_bytes(65_536 - 8) <> <<i::64>>

    {us, _} =
      :timer.tc(fn ->
        blobs
        |> Task.async_stream(&Keyring.Store.put(&1, k), max_concurrency: 64, ordered: false)
        |> Stream.run()
      end)

    length(blobs) / (us / 1.0e6)
  end

  def run do
    dir = Path.expand("_build/bench-sync-#{System.os_time()}")
    File.mkdir_p!(dir)
    gib? = System.get_env("SYNC_GIB", "1") != "0"
    IO.puts("load average #{load()} (2 shared cores); data in #{dir}")

    {:ok, _} = Keyring.start_link(name: SyncBench.K, data_dir: Path.join(dir, "node"))
    k = [instance: SyncBench.K]

    try do
      IO.puts("\n== ingest 256 MiB (put_file vs dd conv=fsync, same run)")
      {source, r256} = ingest(dir, 256 * @mib, 5, k)

      r1g =
        if gib? do
          IO.puts("\n== ingest 1 GiB")
          {src1g, r} = ingest(dir, 1024 * @mib, 3, k)
          File.rm!(src1g)
          r
        end

      IO.puts("\n== reads of a 256 MiB blob (page cache warm)")
      {:ok, cid} = Keyring.Store.put_file(source, k ++ [timeout: :infinity])
      file = Path.join([dir, "node", "store", "blobs", String.slice(cid, 0, 2), cid <> ".data"])
      reads = reads(cid, file, 256 * @mib, 5, k)

      IO.puts("\n== outboards (native, 256 MiB file, 5 rounds)")
      native = native_baseline(source, dir)

      IO.puts("\n== 64 KiB durable puts, 64 callers")
      medium = medium_puts(k)

      IO.puts("\n== summary (medians; MB/s = 10^6 bytes/s; load now #{load()})")
      row(["", "dd MB/s", "put_file MB/s", "ratio", "put_stream MB/s"])

      for {label, rs} <- [{"256 MiB", r256}, {"1 GiB", r1g}], rs do
        row([
          label,
          fmt(median(Enum.map(rs, &elem(&1, 0)))),
          fmt(median(Enum.map(rs, &elem(&1, 1)))),
          fmt2(median(Enum.map(rs, fn {d, p, _} -> p / d end))),
          fmt(median(Enum.map(rs, &elem(&1, 2))))
        ])
      end

      row(["reads MB/s", "File.read!", "get", "get verify", "stream 1 MiB"])

      row([
        "256 MiB",
        fmt(median(Enum.map(reads, &elem(&1, 0)))),
        fmt(median(Enum.map(reads, &elem(&1, 1)))),
        fmt(median(Enum.map(reads, &elem(&1, 2)))),
        fmt(median(Enum.map(reads, &elem(&1, 3))))
      ])

      {with_ob, with_ms} = native["ingest_with_outboard"]
      {without_ob, without_ms} = native["ingest_without_outboard"]
      {lazy, lazy_ms} = native["outboard_later_from_file"]

      IO.puts(
        "outboard at put time: ingest #{with_ob} MB/s with it vs #{without_ob} MB/s without " <>
          "(#{fmt2(with_ms / without_ms)}x the time); computed lazily instead, the first " <>
          "serve waits #{fmt(lazy_ms)} ms (#{lazy} MB/s over the file)"
      )

      {ours, _} = native["outboard_in_memory_ours"]
      {bao, _} = native["outboard_in_memory_bao_tree"]
      {plain, _} = native["blake3_in_memory"]

      IO.puts(
        "outboard builders in memory, 64 MiB: ours #{ours} MB/s, bao-tree #{bao} MB/s, " <>
          "plain BLAKE3 #{plain} MB/s"
      )

      IO.puts("64 KiB durable puts, 64 callers: #{fmt(medium)}/s")
    after
      Supervisor.stop(SyncBench.K)
      File.rm_rf!(dir)
    end
  end
end

# --- Part 2: blob transfer between two members --------------------------------
#
# Two Keyring instances in this VM (A and B, as bench/mesh.exs runs its
# meshes), members of one keyring, linked over QUIC on loopback. A stores a
# file of random bytes and shares it into the keyring; B fetches it with
# Keyring.Sync.fetch/2: size proof, verified stream, every 16 KiB group
# checked and written into a partial blob, fsynced, completed (so the
# transfer includes B's durable write; quinn's does not touch a disk).
# Against: bench/native quic_baseline's bulk transfer of the same MiB (plain
# quinn, same TLS, client and server in one process), measured in the same
# run, rounds interleaved. CPU is the whole VM's (both ends), like quinn's.
# Then 10,000 blobs of 4 KiB in one fetch (blobs/s).
defmodule TransferBench do
  import SyncBench, only: [median: 1, fmt: 1, fmt2: 1, row: 1, load: 0]
  @mib 1_048_576

  def cpu_seconds do
    [_, after_comm] = File.read!("/proc/#{System.pid()}/stat") |> String.split(")", parts: 2)
    f = String.split(after_comm)
    (String.to_integer(Enum.at(f, 11)) + String.to_integer(Enum.at(f, 12))) / 100
  end

  def setup(tmp) do
    {:ok, _} = Keyring.start_link(name: XferA, data_dir: tmp <> "/a")
    {:ok, _} = Keyring.start_link(name: XferB, data_dir: tmp <> "/b")
    {:ok, ring} = Keyring.Ring.create("bench", instance: XferA)
    {:ok, invite} = Keyring.Ring.invite(ring, instance: XferA)
    {:ok, ^ring} = Keyring.join(invite, instance: XferB)
    :ok = Keyring.expose(:echo, & &1, instance: XferA)
    a = Keyring.Identity.node_id(instance: XferA)
    {:ok, "x"} = Keyring.call(a, :echo, "x", instance: XferB)
    %{ring: ring, a_key: Keyring.Identity.public_key(instance: XferA), tmp: tmp}
  end

  def put_random(ctx, mib) do
    path = Path.join(ctx.tmp, "src-#{mib}")

    File.open!(path, [:write, :binary], fn f ->
      for _ <- 1..mib, do: IO.binwrite(f, :crypto.strong_rand_bytes(@mib))
    end)

    {:ok, cid} =
      Keyring.Store.put_file(path, instance: XferA, share: ctx.ring, timeout: :infinity)

    File.rm!(path)
    cid
  end

  # One fetch of `cid` by B: {MiB/s, CPU-s/GiB}; B's copy deleted after.
  def fetch(ctx, cid, mib) do
    cpu0 = cpu_seconds()
    t0 = System.monotonic_time(:microsecond)

    {:ok, t} =
      Keyring.Sync.fetch(cid,
        from: ctx.a_key,
        keyring: ctx.ring,
        instance: XferB,
        timeout: :infinity
      )

    us = System.monotonic_time(:microsecond) - t0
    cpu = cpu_seconds() - cpu0
    ^mib = div(t.bytes_done, @mib)
    {:ok, true} = Keyring.Store.delete(cid, instance: XferB)
    SyncBench.settle()
    {mib / (us / 1.0e6), cpu / (mib / 1024)}
  end

  def quinn(mib) do
    {out, 0} = System.cmd(Path.expand("_build/cargo/release/quic_baseline"), ["#{mib}", "1", "1"])

    m =
      out
      |> String.split("\n", trim: true)
      |> Map.new(fn line ->
        [k, v] = String.split(line, "=")
        {k, v |> Float.parse() |> elem(0)}
      end)

    {m["bulk_mib_per_s"], m["cpu_s_per_gib"]}
  end

  # CPU is counted in 10 ms ticks: a 1 MiB transfer may show none.
  defp cpu_ratio(rs) do
    case for({_, _, k, q} <- rs, q > 0, do: k / q) do
      [] -> "n/a (< 1 tick)"
      ratios -> fmt2(median(ratios))
    end
  end

  def many_small(ctx, n) do
    cids =
      for i <- 1..n do
        data = <<i::64, :crypto.strong_rand_bytes(4096 - 8)::binary>>
        {:ok, cid} = Keyring.Store.put(data, instance: XferA, share: ctx.ring)
        cid
      end

    t0 = System.monotonic_time(:microsecond)

    {:ok, t} =
      Keyring.Sync.fetch(cids,
        from: ctx.a_key,
        keyring: ctx.ring,
        instance: XferB,
        timeout: :infinity
      )

    us = System.monotonic_time(:microsecond) - t0
    ^n = t.blobs_done
    n / (us / 1.0e6)
  end

  def run do
    {_, 0} =
      System.cmd(
        "cargo",
        ~w(build --release -q -p keyring_bench --bins --target-dir _build/cargo),
        stderr_to_stdout: true
      )

    tmp = Path.join(System.tmp_dir!(), "keyring-xfer-#{System.os_time()}")
    File.rm_rf!(tmp)
    File.mkdir_p!(tmp)
    ctx = setup(tmp)
    gib? = System.get_env("SYNC_GIB", "1") != "0"
    sizes = [{1, 5}, {100, 3}] ++ if(gib?, do: [{1024, 1}], else: [])
    IO.puts("\nblob transfer between two members (load #{load()}):")
    row(["size", "keyring MiB/s", "quinn MiB/s", "ratio", "CPU-s/GiB", "quinn CPU", "CPU ratio"])

    try do
      for {mib, rounds} <- sizes do
        cid = put_random(ctx, mib)

        rs =
          for _ <- 1..rounds do
            {q_rate, q_cpu} = quinn(mib)
            {k_rate, k_cpu} = fetch(ctx, cid, mib)
            {k_rate, q_rate, k_cpu, q_cpu}
          end

        row([
          "#{mib} MiB",
          fmt(median(Enum.map(rs, &elem(&1, 0)))),
          fmt(median(Enum.map(rs, &elem(&1, 1)))),
          fmt2(median(Enum.map(rs, fn {k, q, _, _} -> k / q end))),
          fmt2(median(Enum.map(rs, &elem(&1, 2)))),
          fmt2(median(Enum.map(rs, &elem(&1, 3)))),
          cpu_ratio(rs)
        ])

        {:ok, true} = Keyring.Store.delete(cid, instance: XferA)
      end

      rate = many_small(ctx, 10_000)
      IO.puts("10,000 blobs of 4 KiB in one fetch: #{fmt(rate)} blobs/s (goal >= 10,000)")
    after
      Supervisor.stop(XferB)
      Supervisor.stop(XferA)
      File.rm_rf!(tmp)
    end
  end
end

parts = System.get_env("SYNC_PARTS", "ingest,transfer") |> String.split(",")
if "ingest" in parts, do: SyncBench.run()
if "transfer" in parts, do: TransferBench.run()
