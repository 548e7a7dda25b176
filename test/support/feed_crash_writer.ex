defmodule Keyring.Test.FeedCrashWriter do
  @moduledoc false
  # Runs in a separate OS process (see Keyring.Feed.CrashTest): starts a
  # Keyring on `dir`, takes its keyring (creating it in the first round) and
  # lets `writers` processes append to its feed as fast as they can, printing
  # "ACK <seq> <hash>" only after each append is acknowledged, until the test
  # kills the process with SIGKILL.

  def run(dir, round, writers) do
    {:ok, _} = Keyring.start_link(data_dir: dir)

    ring =
      case Keyring.Ring.list() do
        [ring] -> ring
        [] -> elem(Keyring.Ring.create("crash"), 1)
      end

    IO.puts("READY")
    for w <- 1..writers, do: spawn_link(fn -> loop(ring, round, w, 0) end)
    Process.sleep(:infinity)
  end

  defp loop(ring, round, w, i) do
    {:ok, e} = Keyring.Feed.append(ring, "#{round}/#{w}/#{i}")
    IO.puts("ACK #{e.seq} #{Base.encode16(e.hash)}")
    loop(ring, round, w, i + 1)
  end
end
