defmodule Keyring.Gateway.Ops.Calls do
  @moduledoc false
  # RPC calls to handles that keyring members exposed, and routed tasks.
  # The gateway is a local client: `Keyring.call/4` goes over the mesh with
  # this node's identity, and the peer's default-deny rules (expose,
  # authorize) decide, exactly as for a call made from Elixir.

  alias Keyring.{Coordinator, RPC}
  alias Keyring.Gateway.{Args, JSON}
  alias Keyring.Identity.NodeId

  def rpc_call(args, ctx) do
    peer = Args.key(args, "peer")
    handle = Args.string(args, "handle", required: true, max: 255)
    timeout = Args.integer(args, "timeout_ms", default: 5_000, min: 1_000, max: 25_000)
    opts = [instance: ctx.instance, timeout: timeout]

    opts =
      if ring = Map.get(args, "keyring"),
        do: Keyword.put(opts, :keyring, Args.key(%{"keyring" => ring}, "keyring")),
        else: opts

    try do
      RPC.call(peer, handle, Map.get(args, "args"), opts)
    rescue
      e in ArgumentError -> {:error, {:bad_args, Exception.message(e)}}
    end
    |> case do
      {:ok, reply} ->
        {:ok, %{"peer" => NodeId.encode(peer), "handle" => handle, "reply" => JSON.safe(reply)}}

      {:error, reason} ->
        call_error(reason)
    end
  end

  defp call_error(:not_found), do: {:error, 404, "not_found", "the peer exposes no such handle"}

  defp call_error(:forbidden),
    do: {:error, 403, "forbidden", "the peer's authorize refused this node"}

  defp call_error(:not_member),
    do: {:error, 403, "not_member", "this node shares no keyring with that peer"}

  defp call_error(:unavailable),
    do: {:error, 503, "unavailable", "the handler ran past its timeout"}

  defp call_error(:timeout), do: {:error, 504, "timeout", "no answer in time"}
  defp call_error({:handler_error, text}), do: {:error, 502, "handler_error", text}

  defp call_error({:bad_request, text}),
    do: {:error, 400, "bad_request", "the peer refused the arguments: #{text}"}

  defp call_error({:bad_args, text}), do: {:error, 400, "bad_request", text}
  defp call_error(other), do: {:error, 502, "call_failed", inspect(other)}

  def task_route(args, ctx) do
    name = Args.string(args, "capability", required: true, max: 255)
    timeout = Args.integer(args, "timeout_ms", default: 5_000, min: 1_000, max: 25_000)

    # Capabilities are whatever nodes registered (usually atoms); match by
    # name among those advertised, so no atom is made from request text.
    capability =
      Coordinator.active_nodes(instance: ctx.instance)
      |> Enum.flat_map(& &1.capabilities)
      |> Enum.find(&(to_string(&1) == name))

    case capability &&
           Coordinator.route(capability, Map.get(args, "task"),
             instance: ctx.instance,
             timeout: timeout
           ) do
      nil ->
        {:error, 404, "no_capability", "no healthy node registered #{name}"}

      {:ok, result} ->
        {:ok, %{"capability" => name, "result" => JSON.safe(result)}}

      {:error, :no_capability} ->
        {:error, 404, "no_capability", "no healthy node registered #{name}"}

      {:error, :timeout} ->
        {:error, 504, "timeout", "the task did not finish in time"}

      {:error, :nodedown} ->
        {:error, 503, "nodedown", "the node running the task went down"}

      {:error, {:handler_crashed, msg}} ->
        {:error, 502, "handler_crashed", to_string(msg)}

      {:error, other} ->
        {:error, 502, "task_failed", inspect(other)}
    end
  end
end
