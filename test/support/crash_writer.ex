defmodule Keyring.Test.CrashWriter do
  @moduledoc false
  # Runs in a separate OS process (see Keyring.Store.CrashTest): starts a
  # Keyring on `dir` and lets `writers` processes put small blobs, and two
  # more put large ones (a binary of 20 KiB to 3 MiB, and a file of 1 to
  # 6 MiB), as fast as they can, printing "ACK <cid>" only after each put
  # is acknowledged, until the test kills the process with SIGKILL. Every
  # blob is pinned, so GC must keep all of them.

  def run(dir, round, writers) do
    {:ok, _} = Keyring.start_link(data_dir: dir)
    IO.puts("READY")

    for w <- 1..writers do
      spawn_link(fn -> loop(round, w, 0) end)
    end

    spawn_link(fn -> large(round, 0) end)
    spawn_link(fn -> files(dir, round, 0) end)
    Process.sleep(:infinity)
  end

  defp loop(round, w, i) do
    size = 512 + rem(i * 7919, 8192)
    data = :crypto.strong_rand_bytes(size) <> "#{round}/#{w}/#{i}"
    ack(Keyring.Store.put(data, pin: true))
    loop(round, w, i + 1)
  end

  defp large(round, i) do
    size = 20_000 + rem(i * 104_729, 3_000_000)
    ack(Keyring.Store.put(:crypto.strong_rand_bytes(size) <> "#{round}/L/#{i}", pin: true))
    large(round, i + 1)
  end

  defp files(dir, round, i) do
    path = Path.join(dir, "source-#{round}-#{i}")
    File.write!(path, :crypto.strong_rand_bytes(1_048_576 * (1 + rem(i, 6))))
    ack(Keyring.Store.put_file(path, pin: true))
    File.rm!(path)
    files(dir, round, i + 1)
  end

  defp ack({:ok, cid}), do: IO.puts("ACK #{cid}")
end
