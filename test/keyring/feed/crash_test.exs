defmodule Keyring.Feed.CrashTest do
  # Durability under kill -9: an OS process appending to its feed from 4
  # processes is killed in a loop; every entry it acknowledged must be in the
  # chain afterwards (same seq, same hash), the chain must be whole, and the
  # next append must continue it.
  use ExUnit.Case, async: true

  alias Keyring.Test.TmpDir

  @moduletag timeout: 300_000

  test "acknowledged appends survive kill -9, 3 rounds" do
    dir = TmpDir.new("keyring-feed-crash")

    Enum.reduce(1..3, %{}, fn round, acked ->
      acked = Map.merge(acked, run_and_kill(dir, round))
      verify(dir, round, acked)
      acked
    end)
  end

  defp run_and_kill(dir, round) do
    elixir = System.find_executable("elixir")
    paths = Enum.flat_map(:code.get_path(), &["-pa", to_string(&1)])
    script = "Keyring.Test.FeedCrashWriter.run(#{inspect(dir)}, #{round}, 4)"

    port =
      Port.open({:spawn_executable, elixir}, [
        :binary,
        :exit_status,
        {:line, 256},
        args: paths ++ ["-e", script]
      ])

    {:os_pid, os_pid} = Port.info(port, :os_pid)
    first = await_ack(port)

    acked =
      collect(port, Map.new([first]), System.monotonic_time(:millisecond) + :rand.uniform(400))

    {_, 0} = System.cmd("kill", ["-9", Integer.to_string(os_pid)])
    drain(port, acked)
  end

  defp ack("ACK " <> rest) do
    [seq, hash] = String.split(rest)
    {String.to_integer(seq), Base.decode16!(hash)}
  end

  defp ack(_), do: nil

  defp await_ack(port) do
    receive do
      {^port, {:data, {:eol, line}}} -> ack(line) || await_ack(port)
      {^port, {:data, _}} -> await_ack(port)
      {^port, {:exit_status, status}} -> flunk("writer exited early with #{status}")
    after
      60_000 -> flunk("writer acknowledged nothing in 60 s")
    end
  end

  defp collect(port, acked, deadline) do
    remaining = deadline - System.monotonic_time(:millisecond)

    receive do
      {^port, {:data, {:eol, line}}} ->
        collect(port, put(acked, ack(line)), deadline)

      {^port, {:data, _}} ->
        collect(port, acked, deadline)
    after
      max(remaining, 0) -> acked
    end
  end

  # Lines already in the pipe when the process died were acknowledged too.
  defp drain(port, acked) do
    receive do
      {^port, {:data, {:eol, line}}} -> drain(port, put(acked, ack(line)))
      {^port, {:data, _}} -> drain(port, acked)
      {^port, {:exit_status, _}} -> acked
    after
      10_000 -> flunk("killed writer did not exit")
    end
  end

  defp put(acked, nil), do: acked
  defp put(acked, {seq, hash}), do: Map.put(acked, seq, hash)

  defp verify(dir, round, acked) do
    name = Module.concat(__MODULE__, "Round#{round}")
    {:ok, pid} = Keyring.start_link(name: name, data_dir: dir)

    try do
      [ring] = Keyring.Ring.list(instance: name)
      {:ok, chain} = Keyring.Feed.query(keyring: ring, limit: 1_000_000, instance: name)
      assert Enum.map(chain, & &1.seq) == Enum.to_list(1..length(chain))
      by_seq = Map.new(chain, &{&1.seq, &1.hash})

      for {seq, hash} <- acked do
        assert by_seq[seq] == hash,
               "acknowledged entry #{seq} lost after kill -9 in round #{round}"
      end

      {:ok, next} = Keyring.Feed.append(ring, "after round #{round}", instance: name)
      assert next.seq == length(chain) + 1
      assert next.prev == List.last(chain).hash
    after
      Supervisor.stop(pid)
    end
  end
end
