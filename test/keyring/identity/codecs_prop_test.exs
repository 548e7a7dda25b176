defmodule Keyring.Identity.CodecsPropTest do
  # Property tests (PropEr) for the identity and content-id text codecs and
  # the key file decoder.
  use ExUnit.Case, async: true

  alias Keyring.Identity.NodeId
  alias Keyring.Store.Cid

  defp check(property, n \\ 300),
    do: :proper.quickcheck(property, [{:numtests, n}, :quiet]) == true

  # Law: parse(encode(k)) == {:ok, k} for every 32-byte key, and the text
  # form is canonical (52 chars of [a-z2-7]).
  test "node id: encode/parse round trip" do
    assert check(
             :proper.forall(:proper_types.binary(32), fn key ->
               text = NodeId.encode(key)
               NodeId.parse(text) == {:ok, key} and text =~ ~r/\A[a-z2-7]{52}\z/
             end)
           )
  end

  # Law: parse never raises and only accepts canonical encodings.
  test "node id: parse of arbitrary text is total and canonical" do
    assert check(
             :proper.forall(:proper_types.binary(), fn text ->
               case NodeId.parse(text) do
                 {:ok, key} -> NodeId.encode(key) == text
                 {:error, :invalid_node_id} -> true
               end
             end),
             1_000
           )
  end

  # Law: parse(encode(d)) == {:ok, d}; hex is accepted in either case.
  test "cid: encode/parse round trip, both hex cases" do
    assert check(
             :proper.forall(:proper_types.binary(32), fn digest ->
               hex = Cid.encode(digest)

               Cid.parse(hex) == {:ok, digest} and
                 Cid.parse(String.upcase(hex)) == {:ok, digest} and
                 Cid.parse(digest) == {:ok, digest}
             end)
           )
  end

  # Law: the key file decoder answers {:ok, _} or {:error, _} for any bytes,
  # including ones that start with a valid header.
  test "key file: decoding arbitrary bytes never crashes" do
    assert check(
             :proper.forall(
               {:proper_types.oneof([<<>>, "KRKEY", <<"KRKEY", 1, 0>>, <<"KRKEY", 1, 1>>]),
                :proper_types.binary()},
               fn {prefix, rest} ->
                 match?(
                   {tag, _} when tag in [:ok, :error],
                   Keyring.Native.keypair_open(prefix <> rest, nil)
                 )
               end
             ),
             500
           )
  end
end
