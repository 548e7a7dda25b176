defmodule Keyring.Gateway.Events do
  @moduledoc false
  # Keyring.PubSub messages as gateway events: {type, subject, data}.
  #
  # | PubSub message                                  | type                     | subject     |
  # |-------------------------------------------------|--------------------------|-------------|
  # | {:keyring_presence, kind, %Presence{}}          | presence.<kind>          | node id     |
  # | {:keyring_topology, :nodeup/:nodedown, node}    | topology.<nodeup/down>   | -           |
  # | {:keyring_mesh, :peer_up/:peer_down, %{...}}    | mesh.<peer_up/peer_down> | peer id     |
  # | {:keyring_mesh, :membership, info}              | keyring.membership       | keyring id  |
  # | {:keyring_sync, :started/:progress/:finished, t} | sync.<kind>             | keyring id  |

  alias Keyring.Coordinator.Presence
  alias Keyring.Gateway.View
  alias Keyring.Identity.NodeId

  @spec from_message(term(), String.t(), <<_::256>>) ::
          {String.t(), String.t() | nil, map()} | nil
  def from_message({:keyring_presence, kind, %Presence{} = p}, self_id, _self_key)
      when kind in [:join, :update, :down, :leave] do
    {"presence.#{kind}", p.node_id, View.presence(p, self_id)}
  end

  def from_message({:keyring_topology, kind, node}, _self_id, _self_key)
      when kind in [:nodeup, :nodedown] do
    {"topology.#{kind}", nil, %{"node" => Atom.to_string(node)}}
  end

  def from_message({:keyring_mesh, kind, %{keyring: ring, peer: peer} = e}, _self_id, _self_key)
      when kind in [:peer_up, :peer_down] do
    peer_id = NodeId.encode(peer)

    data =
      %{"keyring" => NodeId.encode(ring), "peer" => peer_id}
      |> put_text("address", e[:address])
      |> put_text("reason", e[:reason])

    {"mesh.#{kind}", peer_id, data}
  end

  def from_message({:keyring_mesh, :membership, %{id: _} = info}, _self_id, self_key) do
    # Link state is not in the event; the page asks /v1/mesh for it.
    view = View.ring(info, [], self_key)
    {"keyring.membership", view["id"], view}
  end

  def from_message({:keyring_sync, kind, %{id: _} = t}, _self_id, _self_key)
      when kind in [:started, :progress, :finished] do
    # The cid list can be long (a sync round of thousands of blobs): events
    # carry the figures; /v1/transfers has the cids.
    view = t |> View.transfer() |> Map.delete("cids")
    {"sync.#{kind}", view["keyring"], view}
  end

  def from_message(_other, _self_id, _self_key), do: nil

  defp put_text(map, _key, nil), do: map
  defp put_text(map, key, value), do: Map.put(map, key, to_string(value))
end
