defmodule Keyring.Mesh.Dispatch do
  @moduledoc false
  # Runs inbound RPC requests and casts. The transport delivers them straight
  # to a few dispatcher processes (one per scheduler, started with the mesh),
  # so calls never queue behind the mesh server's membership work. The order
  # of the checks is the security argument:
  #
  #   1. the name is exposed *for the keyring of the connection*, else
  #      :not_found (no process is started);
  #   2. the peer runs fewer than `max_handlers_per_peer` handlers, else the
  #      request is refused as busy (no process is started);
  #   3. in its own process, the request enters the gate (Keyring.Mesh.Handles)
  #      and the peer must be a current, unexpired member of that keyring in
  #      the view published now, else :forbidden; a revocation that happens
  #      from here on kills the process;
  #   4. the handle's authorize function sees the caller (its roles and admin
  #      flag in *that* keyring), else :forbidden;
  #   5. the arguments are decoded (existing atoms only) and the handler runs.
  #
  # One process per request runs steps 3-5, leaves the gate (giving the
  # peer's place back) and answers. Its dispatcher monitors it and holds its
  # timer: past the handle's timeout the process is killed and the caller
  # gets :unavailable ("timeout"); killed by a revocation, "revoked"; dead
  # otherwise, an opaque handler error. (The transport takes the first
  # answer to a request and ignores any other, so a process that answered
  # just before it was killed answers once.) For a process that died before
  # leaving, the dispatcher clears its gate row and gives the place back.
  #
  # A handler that fails answers an opaque `"error <id>"`; the detail is
  # logged here with the same id (unless the handle was exposed with
  # `expose_errors: true`).

  require Logger

  alias Keyring.Identity.NodeId
  alias Keyring.Instance
  alias Keyring.Mesh.{Handles, Quic, TermCodec}

  @type ctx :: %{instance: Keyring.instance(), mesh: reference(), limit: pos_integer()}

  # Node ids a dispatcher remembers (base32 costs more than the rest of a
  # dispatch); past this many it starts over.
  @node_ids 4096

  @doc """
  Starts `count` dispatchers linked to the caller and points the transport's
  requests and casts at them.
  """
  @spec start_link(ctx(), pos_integer()) :: [pid()]
  def start_link(ctx, count \\ System.schedulers_online()) do
    pids = for _ <- 1..count, do: spawn_link(fn -> loop(ctx, new(), :forever) end)
    Quic.dispatch_to(ctx.mesh, pids)
    pids
  end

  @doc """
  An inbound call `id` from `peer` on a connection of keyring `ring`, served
  by a dispatcher of its own (when the transport has none to deliver to).
  """
  @spec request(ctx(), non_neg_integer(), <<_::256>>, <<_::256>>, String.t(), binary()) :: :ok
  def request(ctx, id, ring, peer, name, body) do
    spawn(fn -> loop(ctx, request(ctx, new(), id, ring, peer, name, body), :until_idle) end)
    :ok
  end

  @doc "An inbound cast, as `request/6`: as a request, with nobody to answer."
  @spec cast(ctx(), <<_::256>>, <<_::256>>, String.t(), binary()) :: :ok
  def cast(ctx, ring, peer, name, body) do
    spawn(fn -> loop(ctx, start(ctx, new(), nil, ring, peer, name, body), :until_idle) end)
    :ok
  end

  defp new, do: %{running: %{}, node_ids: %{}}

  defp loop(_ctx, %{running: running}, :until_idle) when map_size(running) == 0, do: :ok

  defp loop(ctx, state, mode) do
    receive do
      {:keyring_mesh, {:request, id, ring, peer, name, body}} ->
        loop(ctx, request(ctx, state, id, ring, peer, name, body), mode)

      {:keyring_mesh, {:cast, ring, peer, name, body}} ->
        loop(ctx, start(ctx, state, nil, ring, peer, name, body), mode)

      {:DOWN, mon, :process, _pid, reason} ->
        loop(ctx, finished(ctx, state, mon, reason), mode)

      {:timeout, _timer, mon} ->
        loop(ctx, expired(state, mon), mode)

      _other ->
        loop(ctx, state, mode)
    end
  end

  defp request(ctx, state, id, ring, peer, name, body) do
    case start(ctx, state, id, ring, peer, name, body) do
      {:not_found, state} ->
        Quic.respond(ctx.mesh, id, :not_found, "")
        state

      {:busy, state} ->
        Quic.respond(ctx.mesh, id, :unavailable, text("busy"))
        state

      state ->
        state
    end
  end

  # Steps 1 and 2 here; 3 to 5 in a process of the request's own.
  defp start(ctx, state, id, ring, peer, name, body) do
    with {:ok, handle} <- lookup(ctx, name, ring),
         :ok <- Handles.reserve(ctx.instance, peer, ctx.limit) do
      {node_id, state} = node_id(state, peer)
      instance = ctx.instance

      respond =
        if id,
          do: fn status, reply -> Quic.respond(ctx.mesh, id, status, reply) end,
          else: fn _, _ -> :ok end

      {pid, mon} =
        spawn_monitor(fn -> serve(instance, handle, name, ring, peer, node_id, body, respond) end)

      Handles.hold(instance, pid, ring, peer)

      timer = :erlang.start_timer(handle.timeout, self(), mon)
      entry = %{id: id, pid: pid, peer: peer, node_id: node_id, timer: timer, expired: false}
      entry = Map.merge(entry, %{handle: handle, name: name})
      put_in(state.running[mon], entry)
    else
      :error when id != nil -> {:not_found, state}
      {:error, :busy} when id != nil -> {:busy, state}
      _ -> state
    end
  end

  defp lookup(ctx, name, ring) do
    rings = Instance.fetch!(ctx.instance, :rings)
    Handles.lookup(ctx.instance, name, ring, map_size(rings))
  end

  defp node_id(state, peer) do
    case state.node_ids do
      %{^peer => text} ->
        {text, state}

      ids ->
        text = NodeId.encode(peer)
        ids = if map_size(ids) >= @node_ids, do: %{}, else: ids
        {text, %{state | node_ids: Map.put(ids, peer, text)}}
    end
  end

  defp expired(state, mon) do
    case state.running do
      %{^mon => entry} ->
        Process.exit(entry.pid, :kill)
        put_in(state.running[mon].expired, true)

      _ ->
        state
    end
  end

  defp finished(ctx, state, mon, reason) do
    case Map.pop(state.running, mon) do
      {nil, _} ->
        state

      {entry, running} ->
        :erlang.cancel_timer(entry.timer, async: true, info: false)
        Handles.leave(ctx.instance, entry.pid, entry.peer)
        if entry.id && reason != :normal, do: answer_death(ctx, entry, reason)
        %{state | running: running}
    end
  end

  defp answer_death(ctx, entry, reason) do
    {status, reply} =
      case reason do
        :killed when entry.expired -> {:unavailable, text("timeout")}
        :killed -> {:unavailable, text("revoked")}
        other -> failed(entry.handle, entry.name, entry.node_id, {:exit, other})
      end

    Quic.respond(ctx.mesh, entry.id, status, reply)
  end

  # --- the request's own process ----------------------------------------------

  defp serve(instance, handle, name, ring, peer, node_id, body, respond) do
    Handles.enter(instance, ring, peer)

    {status, reply} =
      case admit(instance, ring, peer, node_id) do
        {:ok, caller} ->
          Handles.admitted(instance, self())
          run(handle, name, caller, body)

        :error ->
          {:forbidden, ""}
      end

    # The peer's place is free before its answer arrives.
    Handles.leave(instance, self(), peer)
    respond.(status, reply)
  end

  # The peer as the view published right now sees it (after the gate row
  # exists, so a revocation either is seen here or waits for us).
  defp admit(instance, ring, peer, node_id) do
    now = System.os_time(:millisecond)

    case Instance.get(instance, :rings, %{}) do
      %{^ring => %{members: %{^peer => m}}} when m.expires_at_ms == 0 or m.expires_at_ms > now ->
        {:ok, %{key: peer, node_id: node_id, keyring: ring, roles: m.roles, admin: m.admin}}

      _ ->
        :error
    end
  end

  defp run(handle, name, caller, body) do
    result =
      with :ok <- authorize(handle.authorize, caller),
           {:ok, args} <- decode(body) do
        invoke(handle.handler, args, caller)
      end

    reply(result, handle, name, caller.node_id)
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

  defp reply({:ok, result}, handle, name, node_id) do
    case TermCodec.encode(result) do
      {:ok, bytes} -> {:ok, bytes}
      {:error, reason} -> failed(handle, name, node_id, {:unencodable_reply, reason})
    end
  end

  defp reply({:error, :forbidden}, _handle, _name, _node_id), do: {:forbidden, ""}
  defp reply({:error, {:bad_request, why}}, _h, _n, _id), do: {:bad_request, text(inspect(why))}
  defp reply({:error, why}, handle, name, node_id), do: failed(handle, name, node_id, why)

  # The caller learns that it failed and an id to quote; the detail (which
  # may hold arguments, tokens, stack traces) stays in this node's log,
  # unless the handle was exposed with expose_errors: true.
  defp failed(handle, name, node_id, why) do
    if handle.expose_errors do
      {:handler_error, text(inspect(why))}
    else
      id = Base.encode16(:crypto.strong_rand_bytes(4), case: :lower)

      Logger.error(
        "keyring: handler #{inspect(name)} failed for #{node_id} (error #{id}): " <>
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
