defmodule Keyring.Store.CrashTest do
  # Durability under kill -9: a writer OS process is killed in a loop while
  # 16 processes write small blobs and two write large ones (files beside the
  # index, through put/2 and put_file/2); every cid it acknowledged must be
  # readable (and verify) afterwards, the database must always open, no half
  # blob is ever visible, and GC leaves no file without its blob.
  use ExUnit.Case, async: true

  alias Keyring.Test.TmpDir

  @moduletag timeout: 300_000

  test "acknowledged writes survive kill -9, 5 rounds" do
    crash_loop(5)
  end

  @tag :slow
  test "acknowledged writes survive kill -9, 30 rounds" do
    crash_loop(30)
  end

  defp crash_loop(rounds) do
    dir = TmpDir.new("keyring-crash")

    acked =
      Enum.reduce(1..rounds, MapSet.new(), fn round, acked ->
        new = run_and_kill(dir, round)
        assert MapSet.size(new) > 0, "round #{round} acknowledged nothing"
        verify_all(dir, round, MapSet.union(acked, new))
      end)

    assert MapSet.size(acked) > rounds
  end

  defp run_and_kill(dir, round) do
    elixir = System.find_executable("elixir")
    paths = Enum.flat_map(:code.get_path(), &["-pa", to_string(&1)])
    script = "Keyring.Test.CrashWriter.run(#{inspect(dir)}, #{round}, 16)"

    port =
      Port.open({:spawn_executable, elixir}, [
        :binary,
        :exit_status,
        {:line, 256},
        args: paths ++ ["-e", script]
      ])

    {:os_pid, os_pid} = Port.info(port, :os_pid)
    wait_ready(port)
    # Wait for the first acknowledgement (a loaded machine can take a while to
    # get there), let it write for a varying while longer, then pull the plug.
    first = first_ack(port)
    kill_after = :rand.uniform(400)
    acked = collect(port, MapSet.new([first]), System.monotonic_time(:millisecond) + kill_after)
    {_, 0} = System.cmd("kill", ["-9", Integer.to_string(os_pid)])
    drain(port, acked)
  end

  defp wait_ready(port), do: await_line(port, &(&1 == "READY"), "writer did not start")

  defp first_ack(port) do
    await_line(
      port,
      fn
        "ACK " <> cid -> cid
        _ -> nil
      end,
      "writer acknowledged nothing in 60 s"
    )
  end

  # The first line `pick` returns a truthy value for (that value), in 60 s.
  defp await_line(port, pick, timeout_message) do
    receive do
      {^port, {:data, {:eol, line}}} -> pick.(line) || await_line(port, pick, timeout_message)
      {^port, {:data, _}} -> await_line(port, pick, timeout_message)
      {^port, {:exit_status, status}} -> flunk("writer exited early with #{status}")
    after
      60_000 -> flunk(timeout_message)
    end
  end

  defp collect(port, acked, deadline) do
    remaining = deadline - System.monotonic_time(:millisecond)

    if remaining <= 0 do
      acked
    else
      receive do
        {^port, {:data, {:eol, "ACK " <> cid}}} -> collect(port, MapSet.put(acked, cid), deadline)
        {^port, {:data, _}} -> collect(port, acked, deadline)
      after
        remaining -> acked
      end
    end
  end

  # Lines already in the pipe when the process died were acknowledged too.
  defp drain(port, acked) do
    receive do
      {^port, {:data, {:eol, "ACK " <> cid}}} -> drain(port, MapSet.put(acked, cid))
      {^port, {:data, _}} -> drain(port, acked)
      {^port, {:exit_status, _}} -> acked
    after
      10_000 -> flunk("killed writer did not exit")
    end
  end

  defp verify_all(dir, round, acked) do
    name = Module.concat(__MODULE__, "Round#{round}")
    {:ok, pid} = Keyring.start_link(name: name, data_dir: dir)

    try do
      for cid <- acked do
        assert {:ok, _} = Keyring.Store.get(cid, instance: name, verify: true),
               "acknowledged blob #{cid} lost after kill -9 in round #{round}"
      end

      assert {:ok, count} = Keyring.Store.check(instance: name)
      assert count >= MapSet.size(acked)
      assert File.ls!(Path.join([dir, "store", "tmp"])) == []

      # Every acknowledged blob is pinned: GC keeps them all and removes only
      # files a crash left without a committed blob.
      assert {:ok, %{blobs: 0}} = Keyring.Store.gc(instance: name)
      listed = MapSet.new(Keyring.Store.list(instance: name))

      for file <- Path.wildcard(Path.join([dir, "store", "blobs", "*", "*.data"])) do
        assert MapSet.member?(listed, Path.basename(file, ".data")),
               "round #{round}: #{file} has no blob after GC"
      end

      large =
        Enum.count(listed, fn cid -> elem(Keyring.Store.size(cid, instance: name), 1) > 16_384 end)

      assert large > 0
    after
      Supervisor.stop(pid)
    end

    acked
  end
end
