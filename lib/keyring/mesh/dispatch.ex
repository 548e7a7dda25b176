defmodule Keyring.Mesh.Dispatch do
  @moduledoc false
  # Runs inbound RPC requests and casts. The order of the checks is the
  # security argument:
  #
  #   1. the name is exposed *for the keyring of the connection*, else
  #      :not_found (no process is started);
  #   2. the peer runs fewer than `max_handlers_per_peer` handlers, else the
  #      request is refused as busy (no process is started);
  #   3. in its own process, the request enters the gate (Keyring.Mesh.Handles)
  #      and the peer must be a current, unexpired member of that keyring in
  #      the view published now, else :forbidden; a revocation that happens
  #      from here on kills the handler;
  #   4. the handle's authorize function sees the caller (its roles and admin
  #      flag in *that* keyring), else :forbidden;
  #   5. the arguments are decoded (existing atoms only) and the handler runs,
  #      killed after the handle's timeout.
  #
  # A handler that fails answers an opaque `"error <id>"`; the detail is
  # logged here with the same id (unless the handle was exposed with
  # `expose_errors: true`). Every request gets exactly one response.

  require Logger

  alias Keyring.Identity.NodeId
  alias Keyring.Instance
  alias Keyring.Mesh.{Handles, Quic, TermCodec}

  @type ctx :: %{instance: Keyring.instance(), mesh: reference(), limit: pos_integer()}

  @doc "An inbound call `id` from `peer` on a connection of keyring `ring`."
  @spec request(ctx(), non_neg_integer(), <<_::256>>, <<_::256>>, String.t(), binary()) :: :ok
  def request(ctx, id, ring, peer, name, body) do
    respond = fn status, reply -> Quic.respond(ctx.mesh, id, status, reply) end

    with {:ok, handle} <- lookup(ctx, name, ring),
         :ok <- Handles.reserve(ctx.instance, peer, ctx.limit) do
      spawn(fn -> serve(ctx, handle, name, ring, peer, body, respond) end)
    else
      :error -> respond.(:not_found, "")
      {:error, :busy} -> respond.(:unavailable, text("busy"))
    end

    :ok
  end

  @doc "An inbound cast: as a request, with nobody to answer."
  @spec cast(ctx(), <<_::256>>, <<_::256>>, String.t(), binary()) :: :ok
  def cast(ctx, ring, peer, name, body) do
    with {:ok, handle} <- lookup(ctx, name, ring),
         :ok <- Handles.reserve(ctx.instance, peer, ctx.limit) do
      spawn(fn -> serve(ctx, handle, name, ring, peer, body, fn _, _ -> :ok end) end)
    end

    :ok
  end

  defp lookup(ctx, name, ring) do
    rings = Instance.fetch!(ctx.instance, :rings)
    Handles.lookup(ctx.instance, name, ring, map_size(rings))
  end

  defp serve(ctx, handle, name, ring, peer, body, respond) do
    Handles.enter(ctx.instance, ring, peer)

    case admit(ctx.instance, ring, peer) do
      {:ok, caller} ->
        {status, reply} = run(ctx.instance, handle, name, caller, body)
        respond.(status, reply)

      :error ->
        respond.(:forbidden, "")
    end
  after
    Handles.leave(ctx.instance)
  end

  # The peer as the view published right now sees it (after the gate row
  # exists, so a revocation either is seen here or waits for us).
  defp admit(instance, ring, peer) do
    now = System.os_time(:millisecond)

    case Instance.get(instance, :rings, %{}) do
      %{^ring => %{members: %{^peer => m}}} when m.expires_at_ms == 0 or m.expires_at_ms > now ->
        {:ok,
         %{
           key: peer,
           node_id: NodeId.encode(peer),
           keyring: ring,
           roles: m.roles,
           admin: m.admin
         }}

      _ ->
        :error
    end
  end

  defp run(instance, handle, name, caller, body) do
    {pid, mon} = spawn_monitor(fn -> handler(handle, caller, body) end)
    Handles.admitted(instance, pid)
    send(pid, {:go, self()})

    receive do
      {:keyring_handler, ^pid, result} ->
        Process.demonitor(mon, [:flush])
        reply(result, handle, name, caller)

      {:DOWN, ^mon, :process, ^pid, reason} ->
        reply({:error, {:exit, reason}}, handle, name, caller)
    after
      handle.timeout ->
        Process.exit(pid, :kill)
        Process.demonitor(mon, [:flush])
        {:unavailable, text("timeout")}
    end
  end

  defp handler(handle, caller, body) do
    receive do
      {:go, dispatcher} ->
        result =
          with :ok <- authorize(handle.authorize, caller),
               {:ok, args} <- decode(body) do
            invoke(handle.handler, args, caller)
          end

        send(dispatcher, {:keyring_handler, self(), result})
    end
  end

  defp authorize(authorize, caller) do
    if authorize.(caller) == true, do: :ok, else: {:error, :forbidden}
  rescue
    e ->
      Logger.warning("keyring: authorize function raised: #{Exception.message(e)}")
      {:error, :forbidden}
  catch
    _, _ -> {:error, :forbidden}
  end

  defp decode(body) do
    case TermCodec.decode(body) do
      {:ok, args} -> {:ok, args}
      {:error, reason} -> {:error, {:bad_request, reason}}
    end
  end

  defp invoke(handler, args, caller) do
    {:ok, if(is_function(handler, 2), do: handler.(args, caller), else: handler.(args))}
  rescue
    e -> {:error, {:raised, Exception.format(:error, e, __STACKTRACE__)}}
  catch
    kind, reason -> {:error, {kind, inspect(reason)}}
  end

  defp reply({:ok, result}, handle, name, caller) do
    case TermCodec.encode(result) do
      {:ok, bytes} -> {:ok, bytes}
      {:error, reason} -> failed(handle, name, caller, {:unencodable_reply, reason})
    end
  end

  defp reply({:error, :forbidden}, _handle, _name, _caller), do: {:forbidden, ""}
  defp reply({:error, {:bad_request, why}}, _h, _n, _c), do: {:bad_request, text(inspect(why))}
  defp reply({:error, {:exit, :killed}}, _h, _n, _c), do: {:unavailable, text("revoked")}
  defp reply({:error, why}, handle, name, caller), do: failed(handle, name, caller, why)

  # The caller learns that it failed and an id to quote; the detail (which
  # may hold arguments, tokens, stack traces) stays in this node's log,
  # unless the handle was exposed with expose_errors: true.
  defp failed(handle, name, caller, why) do
    if handle.expose_errors do
      {:handler_error, text(inspect(why))}
    else
      id = Base.encode16(:crypto.strong_rand_bytes(4), case: :lower)

      Logger.error(
        "keyring: handler #{inspect(name)} failed for #{caller.node_id} (error #{id}): " <>
          describe(why)
      )

      {:handler_error, text("error #{id}")}
    end
  end

  defp describe({:raised, formatted}), do: formatted
  defp describe(other), do: inspect(other)

  # Error details travel as plain strings so any node can decode them.
  defp text(string) do
    case TermCodec.encode(string) do
      {:ok, bytes} -> bytes
      _ -> ""
    end
  end
end
