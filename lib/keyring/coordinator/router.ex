defmodule Keyring.Coordinator.Router do
  @moduledoc false
  # Task routing: the caller side (a call to the chosen node's coordinator,
  # failures mapped to reasons) and the handler side (run, catch crashes).

  alias Keyring.Coordinator.Presence

  def call(%Presence{pid: pid}, capability, task, timeout) when is_pid(pid) do
    GenServer.call(pid, {:run, capability, task}, timeout)
  catch
    :exit, {:timeout, _} -> {:error, :timeout}
    :exit, {{:nodedown, _}, _} -> {:error, :nodedown}
    :exit, {:noconnection, _} -> {:error, :nodedown}
    :exit, {reason, _} when reason in [:noproc, :normal, :shutdown] -> {:error, :nodedown}
    :exit, {{:shutdown, _}, _} -> {:error, :nodedown}
  end

  def call(_presence, _capability, _task, _timeout), do: {:error, :nodedown}

  def run(handler, task) do
    result =
      case handler do
        fun when is_function(fun, 1) -> fun.(task)
        {m, f, a} -> apply(m, f, [task | a])
      end

    {:ok, result}
  rescue
    e -> {:error, {:handler_crashed, Exception.message(e)}}
  catch
    kind, reason -> {:error, {:handler_crashed, Exception.format_banner(kind, reason)}}
  end
end
