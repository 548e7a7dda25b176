defmodule Keyring.Gateway.Ops.Rings do
  @moduledoc false
  # Keyrings (trust groups): list, one, members, live links, create, invite, join.

  alias Keyring.{Identity, Ring}
  alias Keyring.Gateway.{Args, View}
  alias Keyring.Identity.NodeId

  def list(_args, ctx) do
    rings =
      for id <- Ring.list(instance: ctx.instance),
          {:ok, info} <- [Ring.info(id, instance: ctx.instance)] do
        view(info, ctx)
      end

    {:ok, %{"keyrings" => Enum.sort_by(rings, & &1["id"])}}
  end

  def show(args, ctx) do
    with {:ok, info} <- fetch(args, ctx), do: {:ok, view(info, ctx)}
  end

  def members(args, ctx) do
    with {:ok, info} <- fetch(args, ctx), do: {:ok, %{"members" => view(info, ctx)["members"]}}
  end

  def links(args, ctx) do
    with {:ok, info} <- fetch(args, ctx) do
      peers = Ring.connected(info.id, instance: ctx.instance) |> Enum.map(&NodeId.encode/1)
      {:ok, %{"keyring" => NodeId.encode(info.id), "connected" => Enum.sort(peers)}}
    end
  end

  def create(args, ctx) do
    name = Args.string(args, "name", required: true, max: 64)

    case Ring.create(name, instance: ctx.instance) do
      {:ok, id} ->
        {:ok, info} = Ring.info(id, instance: ctx.instance)
        {:ok, 201, view(info, ctx)}

      {:error, reason} ->
        {:error, 500, "create_failed", inspect(reason)}
    end
  end

  def invite(args, ctx) do
    id = Args.key(args, "id")
    roles = args |> Args.names("roles") |> Enum.sort()
    ttl = Args.integer(args, "ttl_ms", default: 86_400_000, min: 1_000, max: 30 * 86_400_000)
    one_time = Args.boolean(args, "one_time", true)

    case Ring.invite(id, instance: ctx.instance, roles: roles, ttl: ttl, one_time: one_time) do
      {:ok, invite} ->
        {:ok, 201, %{"invite" => invite, "keyring" => NodeId.encode(id)}}

      {:error, :not_found} ->
        {:error, 404, "not_found", "no such keyring on this node"}

      {:error, :not_an_admin} ->
        {:error, 403, "not_an_admin", "this node is not an admin of the keyring"}

      {:error, reason} ->
        {:error, 500, "invite_failed", inspect(reason)}
    end
  end

  def join(args, ctx) do
    invite = Args.string(args, "invite", required: true, max: 8192)
    timeout = Args.integer(args, "timeout_ms", default: 10_000, min: 1_000, max: 25_000)

    case Ring.join(invite, instance: ctx.instance, timeout: timeout) do
      {:ok, id} -> {:ok, 201, %{"keyring" => NodeId.encode(id)}}
      {:error, :busy} -> {:error, 503, "busy", "the admin is turning joins away; retry later"}
      {:error, :timeout} -> {:error, 504, "timeout", "the admin did not answer in time"}
      {:error, reason} -> join_error(reason)
    end
  end

  # An invite is a credential: one that does not decode, verify or admit is
  # refused (403); failures to reach the admin are upstream (502).
  defp join_error(reason) do
    refused? =
      match?({:refused, _}, reason) or
        reason in [:invalid_invite, :bad_signature, :invite_expired, :bad_invite] or
        match?({:malformed, _, _}, reason) or match?({:malformed, _}, reason)

    if refused?,
      do: {:error, 403, "bad_invite", "the invite was not accepted: #{inspect(reason)}"},
      else: {:error, 502, "join_failed", "the join did not complete: #{inspect(reason)}"}
  end

  defp fetch(args, ctx) do
    case Ring.info(Args.key(args, "id"), instance: ctx.instance) do
      {:ok, info} -> {:ok, info}
      {:error, :not_found} -> {:error, 404, "not_found", "no such keyring on this node"}
    end
  end

  defp view(info, ctx) do
    online = Ring.connected(info.id, instance: ctx.instance)
    View.ring(info, online, Identity.public_key(instance: ctx.instance))
  end
end
