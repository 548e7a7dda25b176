defmodule Keyring.Gateway.View do
  @moduledoc false
  # Keyring's structs as the JSON objects the gateway documents
  # (priv/openapi.json): ids in text form, atoms as strings.

  alias Keyring.Coordinator.Presence
  alias Keyring.Gateway.JSON
  alias Keyring.Identity.NodeId

  def presence(%Presence{} = p, self_id \\ nil) do
    %{
      "node_id" => p.node_id,
      "node" => Atom.to_string(p.node),
      "status" => Atom.to_string(p.status),
      "incarnation" => p.incarnation,
      "mesh_addr" => p.mesh_addr,
      "keyrings" => Enum.map(p.keyrings, &NodeId.encode/1),
      "capabilities" => Enum.map(p.capabilities, &JSON.safe/1),
      "version" => p.version,
      "uptime_s" => Presence.uptime_s(p),
      "health" => JSON.safe(p.health),
      "self" => p.node_id == self_id
    }
  end

  @doc "A keyring's info; `online` are the member keys with a live link."
  def ring(info, online, self_key) do
    online = MapSet.new(online)

    members =
      for m <- info.members do
        %{
          "node_id" => NodeId.encode(m.key),
          "roles" => m.roles,
          "admin" => m.admin,
          "expires_at_ms" => if(m.expires_at_ms == 0, do: nil, else: m.expires_at_ms),
          "online" => m.key == self_key or MapSet.member?(online, m.key),
          "self" => m.key == self_key,
          # The keyring's root key is a member (the first admin), not a node.
          "root" => m.key == info.id
        }
      end

    me = Enum.find(info.members, &(&1.key == self_key))

    %{
      "id" => NodeId.encode(info.id),
      "name" => info.name,
      "log" => %{"length" => info.length, "head" => Base.encode16(info.head, case: :lower)},
      "members" => members,
      "total" => Enum.count(members, &(not &1["root"])),
      "online" => Enum.count(members, &(&1["online"] and not &1["root"])),
      "my_roles" => if(me, do: me.roles, else: []),
      "admin" => (me && me.admin) || false
    }
  end

  @doc false
  # A Keyring.Sync transfer as JSON (ids and cids in text form).
  def transfer(t) do
    %{
      "id" => t.id,
      "keyring" => NodeId.encode(t.keyring),
      "cids" => Enum.map(t.cids, &Keyring.Store.Cid.encode/1),
      "reason" => Atom.to_string(t.reason),
      "stage" => stage(t.stage),
      "blobs_done" => t.blobs_done,
      "blobs_total" => t.blobs_total,
      "bytes_done" => t.bytes_done,
      "bytes_total" => t.bytes_total,
      "rate" => t.rate * 1.0,
      "eta_s" => t.eta_s && t.eta_s * 1.0,
      "stalled" => t.stalled,
      "providers" =>
        for({k, n} <- Enum.sort(t.providers), do: %{"node_id" => NodeId.encode(k), "bytes" => n}),
      "errors" =>
        for(e <- t.errors, do: %{"node_id" => NodeId.encode(e.provider), "error" => e.error}),
      "not_found" => Enum.map(t.not_found, &Keyring.Store.Cid.encode/1),
      "started_ms" => t.started_ms,
      "finished_ms" => t.finished_ms
    }
  end

  defp stage({:failed, _}), do: "failed"
  defp stage(stage), do: Atom.to_string(stage)
end
