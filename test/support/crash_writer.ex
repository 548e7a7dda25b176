defmodule Keyring.Test.CrashWriter do
  @moduledoc false
  # Runs in a separate OS process (see Keyring.Store.CrashTest): starts a
  # Keyring on `dir` and lets `writers` processes put blobs as fast as they
  # can, printing "ACK <cid>" only after each put is acknowledged, until the
  # test kills the process with SIGKILL.

  def run(dir, round, writers) do
    {:ok, _} = Keyring.start_link(data_dir: dir)
    IO.puts("READY")

    for w <- 1..writers do
      spawn_link(fn -> loop(round, w, 0) end)
    end

    Process.sleep(:infinity)
  end

  defp loop(round, w, i) do
    size = 512 + rem(i * 7919, 8192)
    data = :crypto.strong_rand_bytes(size) <> "#{round}/#{w}/#{i}"
    {:ok, cid} = Keyring.Store.put(data)
    IO.puts("ACK #{cid}")
    loop(round, w, i + 1)
  end
end
