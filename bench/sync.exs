# Data-plane benchmarks. Part 1 (this file, for now): large-blob ingest and
# reads against the disk's own speed, and the cost of outboards.
#
#   bin/bench sync        (= MIX_ENV=prod mix run --no-start bench/sync.exs)
#   SYNC_GIB=0 bin/bench sync     skips the 1 GiB case
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

SyncBench.run()
