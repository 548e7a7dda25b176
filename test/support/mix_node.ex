defmodule Keyring.Test.MixNode do
  @moduledoc false
  # `mix keyring.start` run as an OS process from the project directory
  # (MIX_ENV=test, already compiled), as a person runs it in a terminal.

  defstruct [:port, :os_pid, :name, :node, :banner]

  @doc "Starts `mix keyring.start NAME ARGS...` and waits for its banner."
  def start(name, args, timeout \\ 120_000) do
    mix = System.find_executable("mix") || raise "mix not in PATH"

    port =
      Port.open({:spawn_executable, mix}, [
        :binary,
        :exit_status,
        :stderr_to_stdout,
        args: ["keyring.start", name | args],
        env: [{~c"MIX_ENV", ~c"test"}]
      ])

    {:os_pid, os_pid} = Port.info(port, :os_pid)
    node = :"#{name}@127.0.0.1"
    deadline = System.monotonic_time(:millisecond) + timeout
    banner = await_banner(port, "", deadline)
    %__MODULE__{port: port, os_pid: os_pid, name: name, node: node, banner: banner}
  end

  defp await_banner(port, acc, deadline) do
    left = max(deadline - System.monotonic_time(:millisecond), 0)

    receive do
      {^port, {:data, data}} ->
        acc = acc <> data

        if acc =~ "Watching connections",
          do: acc,
          else: await_banner(port, acc, deadline)

      {^port, {:exit_status, status}} ->
        raise "mix keyring.start exited with #{status}:\n#{acc}"
    after
      left -> raise "no banner from mix keyring.start in time:\n#{acc}"
    end
  end

  @doc "Everything the node printed since its banner (waits `ms` first)."
  def output(%__MODULE__{port: port}, ms \\ 0) do
    Process.sleep(ms)
    drain(port, "")
  end

  defp drain(port, acc) do
    receive do
      {^port, {:data, data}} -> drain(port, acc <> data)
    after
      0 -> acc
    end
  end

  @doc "Sends `signal` to the task's OS process (the one this test started)."
  def signal(%__MODULE__{os_pid: pid}, signal \\ "TERM"),
    do: System.cmd("kill", ["-#{signal}", Integer.to_string(pid)], stderr_to_stdout: true)

  @doc "Kills the task (SIGKILL) and waits for it to exit."
  def stop(%__MODULE__{port: port} = n) do
    signal(n, "KILL")

    receive do
      {^port, {:exit_status, _}} -> :ok
    after
      10_000 -> :ok
    end
  end

  @doc "Whether epmd still lists the node."
  def registered?(%__MODULE__{name: name}) do
    {:ok, names} = :erl_epmd.names(~c"127.0.0.1")
    Enum.any?(names, fn {n, _port} -> to_string(n) == name end)
  end
end
