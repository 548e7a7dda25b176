defmodule Keyring.Cluster.GossipCodecPropTest do
  use ExUnit.Case, async: true

  alias Keyring.Cluster.Strategy.Gossip
  alias Keyring.Native

  @secret "prop-test-secret-0123456789"

  defp check(prop, n \\ 500), do: assert(:proper.quickcheck(prop, [:quiet, numtests: n]) == true)

  defp name_char,
    do: :proper_types.elements(~c"abcdefghijklmnopqrstuvwxyz0123456789_-")

  defp announce_gen do
    :proper_types.tuple([
      :proper_types.non_neg_integer(),
      :proper_types.binary(16),
      :proper_types.binary(32),
      :proper_types.non_neg_integer(),
      :proper_types.non_empty(:proper_types.list(name_char())),
      :proper_types.non_empty(:proper_types.list(name_char()))
    ])
  end

  defp encode({ts, nonce, pk, inc, cluster, name}) do
    cluster = cluster |> to_string() |> String.slice(0, 64)
    node = String.slice("#{name}@127.0.0.1", 0, 255)
    {:ok, body} = Native.gossip_encode(ts, nonce, pk, inc, cluster, node)
    {body, {ts, nonce, pk, inc, cluster, node}}
  end

  test "any bytes decode to {:ok, _} or {:error, atom}, never an exception" do
    check(
      :proper.forall(:proper_types.binary(), fn bytes ->
        case Native.gossip_decode(bytes) do
          {:ok, {_, _, _, _, _, _}} -> true
          {:error, reason} when is_atom(reason) -> true
        end
      end),
      2_000
    )
  end

  test "announcements round-trip through the Rust codec" do
    check(
      :proper.forall(announce_gen(), fn a ->
        {body, fields} = encode(a)
        packet = body <> :crypto.mac(:hmac, :sha256, @secret, body)
        Native.gossip_decode(packet) == {:ok, fields}
      end)
    )
  end

  test "flipping any bit of a signed packet gets it dropped" do
    state = %{secret: @secret, cluster: "c", nonces: %{}, config: [max_skew: 30_000]}

    gen =
      :proper_types.tuple([
        announce_gen(),
        :proper_types.non_neg_integer(),
        :proper_types.integer(0, 7)
      ])

    check(
      :proper.forall(gen, fn {{_, nonce, pk, inc, _, name}, at, bit} ->
        now = System.os_time(:millisecond)
        {body, _} = encode({now, nonce, pk, inc, ~c"c", name})
        packet = body <> :crypto.mac(:hmac, :sha256, @secret, body)
        valid? = match?({:ok, _, _, _}, Gossip.check(packet, state, now))
        at = rem(at, byte_size(packet))
        <<head::binary-size(at), byte, rest::binary>> = packet
        flipped = head <> <<Bitwise.bxor(byte, Bitwise.bsl(1, bit))>> <> rest
        valid? and match?({:error, _}, Gossip.check(flipped, state, now))
      end)
    )
  end
end
