defmodule Keyring.Mesh.Dispatch do
  @moduledoc false
  # Runs inbound RPC requests and casts in their own processes: default-deny
  # (unexposed name -> :not_found), then the handle's authorize function sees
  # the caller (its TLS-authenticated key and its roles in the keyring), and
  # only then are the arguments decoded (existing atoms only) and the handler
  # run. Every request gets exactly one response.

  require Logger

  alias Keyring.Identity.NodeId
  alias Keyring.Instance
  alias Keyring.Mesh.TermCodec

  def request(state, id, ring, peer, name, body) do
    %{transport: t, handle: h} = state
    respond = fn status, reply -> t.respond(h, id, status, reply) end

    case Map.fetch(state.handles, name) do
      :error ->
        respond.(:not_found, "")

      {:ok, {handler, authorize, timeout}} ->
        caller = caller(state.name, ring, peer)

        spawn(fn ->
          case run_bounded(handler, authorize, caller, body, timeout) do
            {:ok, reply} -> respond.(:ok, reply)
            {status, detail} -> respond.(status, detail)
          end
        end)
    end
  end

  # The handler runs in its own process so a hung handler cannot keep the
  # request (and its stream) open forever: after `timeout` it is killed and
  # the caller gets {:error, :unavailable}.
  defp run_bounded(handler, authorize, caller, body, timeout) do
    task = Task.async(fn -> run(handler, authorize, caller, body) end)

    case Task.yield(task, timeout) || Task.shutdown(task, :brutal_kill) do
      {:ok, result} -> result
      _ -> {:unavailable, detail(:handler_timeout)}
    end
  end

  def cast(state, ring, peer, name, body) do
    with {:ok, {handler, authorize, _timeout}} <- Map.fetch(state.handles, name) do
      caller = caller(state.name, ring, peer)
      spawn(fn -> run(handler, authorize, caller, body) end)
    end

    :ok
  end

  defp caller(instance, ring, peer) do
    member =
      case Instance.fetch!(instance, :rings) do
        %{^ring => %{members: %{^peer => m}}} -> m
        _ -> %{roles: [], admin: false}
      end

    %{
      key: peer,
      node_id: NodeId.encode(peer),
      keyring: ring,
      roles: member.roles,
      admin: member.admin
    }
  end

  defp run(handler, authorize, caller, body) do
    with true <- authorized?(authorize, caller) || {:forbidden, ""},
         {:ok, args} <- decode(body),
         {:ok, result} <- invoke(handler, args, caller) do
      case TermCodec.encode(result) do
        {:ok, bytes} -> {:ok, bytes}
        {:error, reason} -> {:handler_error, detail({:unencodable_reply, inspect(reason)})}
      end
    end
  end

  defp authorized?(authorize, caller) do
    authorize.(caller) == true
  rescue
    e ->
      Logger.warning("keyring: authorize function raised: #{Exception.message(e)}")
      false
  catch
    _, _ -> false
  end

  defp decode(body) do
    case TermCodec.decode(body) do
      {:ok, args} -> {:ok, args}
      {:error, reason} -> {:bad_request, detail(reason)}
    end
  end

  defp invoke(handler, args, caller) do
    result = if is_function(handler, 2), do: handler.(args, caller), else: handler.(args)
    {:ok, result}
  rescue
    e -> {:handler_error, detail({:raised, Exception.message(e)})}
  catch
    kind, reason -> {:handler_error, detail({kind, inspect(reason)})}
  end

  # Error details travel as plain strings so any node can decode them.
  defp detail(term) do
    case TermCodec.encode(inspect(term)) do
      {:ok, bytes} -> bytes
      _ -> ""
    end
  end
end
